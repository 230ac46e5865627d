"""Acceptance: the same head-role claims run through ``native:``, ``hf:`` and ``gguf:`` on models the
tests wrote, bound with ``--interp-model``, and give the same verdicts and estimates.

One claims file says ``model: subject``; pytest runs it three times, binding ``subject`` to the
native checkpoint, to its HuggingFace GPT-2 export and to that export's GGUF file
(:mod:`interp_checks.models.export`). The subject is the trained zoo model ``attn-only-2l`` when it
is built with learned absolute positions, which GPT-2 can express (then the claims about its best induction and previous-token heads, read from the
checkpoint's metadata, are SUPPORTED in all three formats, and a claim about its weakest head is
REFUTED), otherwise a random attention-only model (where every head-role claim is REFUTED in all
three formats). Either way the three reports must agree: same outcome per claim, same estimate to
1e-5, because the three loaders see the same weights and the same input token ids.

What may differ between formats, and is not compared: effect sizes. They are measured against a
random-weights twin of the *loaded architecture*, which for hf:/gguf: is a randomly initialised
GPT-2 (HF init, random MLPs), not a random native attention-only model. Verdicts do not use it.
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from interp_checks.plugin import OPT_MODEL, OPT_RESAMPLES

torch = pytest.importorskip("torch")

ZOO_MODEL = "attn-only-2l"
FAST = f"{OPT_RESAMPLES}=999"
FORMATS = ("native", "hf", "gguf")
INPUTS = "{kind: repeated_random_tokens, seq_len: 24, n: 32}"
RANDOM_ARCH = dict(
    d_model=32, d_head=8, n_heads=4, n_layers=2, n_ctx=64, attn_only=True, normalization_type="LN",
    positional_embedding_type="standard",
)


def _zoo_folder() -> Path | None:
    """The zoo model, when it exists and GPT-2 can express it (learned absolute positions)."""
    from interp_checks.models.spec import available_zoo_models, zoo_dir

    if ZOO_MODEL not in available_zoo_models():
        return None
    folder = zoo_dir() / ZOO_MODEL
    architecture = json.loads((folder / "config.json").read_text(encoding="utf-8"))["architecture"]
    return folder if architecture.get("positional_embedding_type", "standard") == "standard" else None


def test_export_refuses_a_zoo_model_gpt2_cannot_express(tmp_path):
    """The zoo uses rotary positions, which GPT-2 has no place for: export says so and writes nothing."""
    from interp_checks.models.export import export_hf_gpt2
    from interp_checks.models.spec import available_zoo_models, zoo_dir

    if ZOO_MODEL not in available_zoo_models() or _zoo_folder() is not None:
        pytest.skip("the zoo model is exportable; the formats test below uses it")
    with pytest.raises(ValueError, match="rotary"):
        export_hf_gpt2(zoo_dir() / ZOO_MODEL, tmp_path / "hf")
    assert not (tmp_path / "hf" / "model.safetensors").exists()


def _head_scores(folder: Path) -> dict[str, dict[str, float]]:
    """{role: {head: score}} from the zoo checkpoint's metadata, or measured when it has none."""
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    recorded = (config.get("meta") or {}).get("evaluation", {}).get("head_scores")
    if recorded and {"induction", "previous_token"} <= set(recorded):
        return recorded
    from interp_checks.checks.heads import induction_mask, previous_token_mask, role_scores
    from interp_checks.inputs.generators import Vocabulary, generate
    from interp_checks.models import load_model, parse_model_spec

    model = load_model(parse_model_spec(f"native:{folder}"))
    vocab = Vocabulary(model.d_vocab, model.n_ctx, model.bos_token_id, model.special_token_ids)
    tokens = torch.as_tensor(generate({"kind": "repeated_random_tokens", "seq_len": 32, "n": 64}, vocab, 1234).tokens)
    names = [f"blocks.{layer}.attn.hook_pattern" for layer in range(model.n_layers)]
    with torch.no_grad():
        _, cache = model.bridge.run_with_cache(tokens, names_filter=lambda name: name in names)
    scores: dict[str, dict[str, float]] = {"induction": {}, "previous_token": {}}
    for role, mask in (("induction", induction_mask(tokens)), ("previous_token", previous_token_mask(tokens))):
        for layer, name in enumerate(names):
            per_head = role_scores(cache[name].float(), mask).nanmean(0)
            for head in range(model.n_heads):
                scores[role][f"L{layer}H{head}"] = float(per_head[head])
    return scores


def _claim(claim_id: str, check: str, where: str, expect: str, expected: str) -> str:
    return textwrap.dedent(
        f"""\
        - id: {claim_id}
          check: {check}
          {where}
          inputs: {INPUTS}
          expect: {{{expect}}}
          expected: {expected}
        """
    )


@pytest.fixture(scope="module")
def subject(tmp_path_factory) -> dict:
    """The native checkpoint, its HF and GGUF exports, and the claims (with expected verdicts)."""
    from interp_checks.models.export import export_gguf, export_hf_gpt2

    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    root = tmp_path_factory.mktemp("formats")
    folder = _zoo_folder()
    if folder is not None:
        scores = _head_scores(folder)
        induction, previous = scores["induction"], scores["previous_token"]
        best = max(induction, key=induction.get)
        best_prev = max(previous, key=previous.get)
        worst = min(induction, key=induction.get)
        # Half the recorded score: a claim the trained head clearly meets, and a random head does not.
        t_ind = round(induction[best] / 2, 2)
        t_prev = round(previous[best_prev] / 2, 2)
        assert t_ind >= 0.2 and t_prev >= 0.2, f"{folder}: no clear induction/previous-token head: {scores}"
        claims = [
            _claim("best-induction-head", "induction_head", f"head: {best}", f"score: '>= {t_ind}'", "supported"),
            _claim("best-previous-token-head", "previous_token_head", f"head: {best_prev}", f"score: '>= {t_prev}'", "supported"),
            _claim("induction-layer", "induction_head", f"layer: {best[1:best.index('H')]}", f"max_score: '>= {t_ind}'", "supported"),
        ]
        if induction[worst] < 0.2:
            claims.append(_claim("weakest-head-is-induction", "induction_head", f"head: {worst}", "score: '>= 0.4'", "refuted"))
        kind = f"zoo:{ZOO_MODEL}"
    else:
        from interp_checks.models.native import boot_random, save_native
        from tests.helpers import tiny_models

        tokenizer = tiny_models.train_tiny_tokenizer(300)
        (root / "tok").mkdir()
        tokenizer.save(str(root / "tok" / "tokenizer.json"))
        bridge = boot_random({**RANDOM_ARCH, "d_vocab": tokenizer.get_vocab_size()}, seed=5)
        folder = save_native(bridge, root / "native", tokenizer_json=root / "tok" / "tokenizer.json")
        claims = [
            _claim("L1H0-induction", "induction_head", "head: L1H0", "score: '>= 0.4'", "refuted"),
            _claim("L0H0-previous-token", "previous_token_head", "head: L0H0", "score: '>= 0.4'", "refuted"),
            _claim("induction-layer", "induction_head", "layer: 1", "max_score: '>= 0.4'", "refuted"),
            _claim("L1H1-induction", "induction_head", "head: L1H1", "score: '>= 0.4'", "refuted"),
        ]
        kind = "random"
    hf_dir = export_hf_gpt2(folder, root / "hf")
    gguf_path = export_gguf(hf_dir, root / "gguf" / "subject.gguf")
    specs = {"native": f"native:{folder}", "hf": f"hf:{hf_dir}", "gguf": f"gguf:{gguf_path}"}
    return {"kind": kind, "specs": specs, "claims": claims}


def test_same_claims_same_verdicts_in_every_format(pytester, subject):
    body = "".join(subject["claims"])
    pytester.makefile(".claims.yaml", formats="model: subject\nseed: 0\nclaims:\n" + textwrap.indent(body, "  "))
    reports = {}
    formats = list(FORMATS)
    for fmt in formats:
        spec = subject["specs"][fmt]
        result = pytester.runpytest_inprocess(FAST, f"{OPT_MODEL}=subject={spec}")
        # Every claim carries the verdict it must get (`expected:`), so "passed" means it got it.
        result.assert_outcomes(passed=len(subject["claims"]))
        report = json.loads((pytester.path / "reports" / "report.json").read_text())
        claims = {c["id"]: c for c in report["claims"]}
        assert {c["model"] for c in claims.values()} == {spec}, fmt
        reports[fmt] = claims

    reference_format, *others = formats
    reference = reports[reference_format]
    assert len(reference) == len(subject["claims"])
    if subject["kind"] == "random":
        assert {c["outcome"] for c in reference.values()} == {"refuted"}
    else:
        assert reference["best-induction-head"]["outcome"] == "supported"
    for fmt in others:
        other = reports[fmt]
        assert set(other) == set(reference), fmt
        for claim_id, want in reference.items():
            got = other[claim_id]
            where = f"{subject['kind']} subject, {fmt} vs {reference_format}, claim {claim_id}"
            assert got["outcome"] == want["outcome"], where
            assert got["n"] == want["n"], where
            (got_exp,), (want_exp,) = got["expectations"], want["expectations"]
            assert got_exp["estimate"] == pytest.approx(want_exp["estimate"], abs=1e-5), where
            assert got_exp["ci"] == pytest.approx(want_exp["ci"], abs=1e-4), where
            assert got_exp["outcome"] == want_exp["outcome"], where
