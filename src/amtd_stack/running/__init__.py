"""Running the stack: function processes, their supervision, the whole stack's lifecycle, `amtd up`
and the demo.
"""
