"""The two-country demo world (Morocco ``MA``, Qatar ``QA``) and its end-to-end scenario.

``jisr demo --dir W`` makes ``W/MA`` and ``W/QA`` (or reuses them), serves both over real
HTTP on loopback, runs the scenario against them with a narrated trace, then keeps serving
until Ctrl-C (``--no-serve``: exits after the scenario). Each capability adds its step to
``scenario.STEPS``, so the demo always shows the whole platform as it stands. The demo uses
public services and HTTP APIs only, like any deployer.
"""
