"""One reader of component names (``Site.parse``) for every family: it inverts ``Site.name``, accepts
only the kinds a check asks for, and names the model's range when a component is outside it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from interp_checks.checks.base import CheckError, ModelShape, parse_component
from interp_checks.interventions import SITE_KINDS, Site, SiteNameError

SHAPE = ModelShape(n_layers=3, n_heads=4, d_vocab=100, n_ctx=64, d_mlp=32, act_fn="solu_ln")


@st.composite
def sites(draw) -> Site:
    kind = draw(st.sampled_from(SITE_KINDS))
    layer = draw(st.integers(0, SHAPE.n_layers - 1))
    head = draw(st.integers(0, SHAPE.n_heads - 1)) if kind.startswith("head") else None
    neuron = draw(st.integers(0, SHAPE.d_mlp - 1)) if kind == "neuron" else None
    return Site(kind, layer, head, None, neuron)


@given(sites())
def test_parse_inverts_name(site):
    assert Site.parse(site.name, SHAPE) == site


@pytest.mark.parametrize(
    "text, kinds, message",
    [
        ("L3H0", ("head",), "outside the model, which has 3 layer(s) (L0..L2)"),
        ("L0H4", ("head",), "4 heads per layer (H0..H3)"),
        ("L0N32", ("neuron",), "32 neurons per MLP (N0..N31)"),
        ("L0N1", ("head",), "is not of the form L<layer>H<head>, e.g. L1H0"),
        ("L0H1.k", ("head", "mlp"), "is not of the form L<layer>H<head> or L<layer>.mlp"),
        ("head 3", SITE_KINDS, "is not of the form"),
    ],
)
def test_a_bad_name_says_what_is_accepted_and_the_models_range(text, kinds, message):
    with pytest.raises(SiteNameError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        Site.parse(text, SHAPE, kinds=kinds)


def test_a_neuron_of_an_attention_only_model_is_refused_as_a_check_error():
    attention_only = ModelShape(n_layers=2, n_heads=4, d_vocab=100, n_ctx=64)
    with pytest.raises(CheckError, match="attention-only"):
        parse_component("L0N1", attention_only, ("neuron",), "neuron")
