"""Targets: ``namespace/name`` parsing, with a message that names every kind of mistake."""

from __future__ import annotations

import pytest

from amtd.model.targets import Target, check_namespace_name, check_pod_name, parse_target


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("shop/cart-6b8f7d9c4-hx2lp", Target("shop", "cart-6b8f7d9c4-hx2lp")),
        ("a/b", Target("a", "b")),
        ("kube-system/coredns.1", Target("kube-system", "coredns.1")),
        ("n" * 63 + "/" + "p" * 253, Target("n" * 63, "p" * 253)),
    ],
)
def test_valid_targets_parse(text: str, expected: Target) -> None:
    assert parse_target(text) == expected
    assert str(parse_target(text)) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cart", "target 'cart' must have the form 'namespace/name' (exactly one '/')"),
        ("a/b/c", "target 'a/b/c' must have the form 'namespace/name' (exactly one '/')"),
        ("/cart", "namespace is empty"),
        ("shop/", "pod name is empty"),
        ("Shop/cart", "namespace 'Shop' is not a DNS-1123 label (a-z, 0-9, '-')"),
        ("shop/Cart", "pod name 'Cart' is not a DNS-1123 subdomain (a-z, 0-9, '-', '.')"),
        ("shop./cart", "namespace 'shop.' is not a DNS-1123 label (a-z, 0-9, '-')"),
        ("-shop/cart", "namespace '-shop' is not a DNS-1123 label (a-z, 0-9, '-')"),
        ("shop/cart-", "pod name 'cart-' is not a DNS-1123 subdomain (a-z, 0-9, '-', '.')"),
        ("shop/a..b", "pod name 'a..b' is not a DNS-1123 subdomain (a-z, 0-9, '-', '.')"),
        ("n" * 64 + "/cart", f"namespace {'n' * 64!r} is longer than 63 characters"),
        ("shop/" + "p" * 254, f"pod name {'p' * 40!r}... is longer than 253 characters"),
        ("", "target '' must have the form 'namespace/name' (exactly one '/')"),
    ],
)
def test_invalid_targets_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_target(text)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("value", "type_name"), [(None, "NoneType"), (42, "int"), (["a/b"], "list"), (b"a/b", "bytes")]
)
def test_non_string_target_is_rejected(value: object, type_name: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_target(value)  # type: ignore[arg-type]
    assert str(caught.value) == f"target must be a string 'namespace/name', got {type_name}"


def test_namespace_and_pod_name_checks_return_their_input() -> None:
    assert check_namespace_name("demo") == "demo"
    assert check_pod_name("nginx-7d9c4b5f6-k2m9x") == "nginx-7d9c4b5f6-k2m9x"
