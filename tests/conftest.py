"""Test tiers: tests/unit load no model; tests/integration build tiny models or use the zoo."""

pytest_plugins = ["pytester"]
