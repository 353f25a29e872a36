"""The HTTP and CloudEvents edge the functions share: decoding requests, answering the Broker,
publishing.
"""
