"""Every pytest run in the environment imports the plugin, so it must not import anything heavy."""

import subprocess
import sys

HEAVY = ("torch", "transformer_lens", "transformers", "scipy", "numpy", "safetensors", "matplotlib")


def test_importing_the_plugin_and_package_loads_nothing_heavy():
    code = (
        "import sys, interp_checks, interp_checks.plugin, interp_checks.models.spec; "
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_a_pytest_run_without_claim_files_imports_nothing_heavy(pytester):
    # numpy is left out here: other installed plugins (hypothesis's) may import it themselves
    heavy = tuple(m for m in HEAVY if m != "numpy")
    pytester.makepyfile(
        test_plain=f"""
        import sys
        def test_nothing_heavy():
            assert [m for m in {heavy!r} if m in sys.modules] == []
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)
