"""retarget: architectures put on other image sizes, class counts, vocabularies and sequence lengths run."""

from __future__ import annotations

import pytest
import torch

from mad.graph import ArchGraph, GraphBuilder, GraphError, example_inputs
from mad.graph.passes import retarget

IMAGE_TASKS = [((1, 28, 28), 10), ((3, 32, 32), 10), ((1, 8, 8), 4)]


def _runs(g: ArchGraph, expect: tuple[int, ...]) -> None:
    g.validate()
    model = g.to_module()
    out = model(*g.example_inputs())
    assert tuple(out.shape) == expect
    out.float().sum().backward()
    assert any(p.grad is not None for p in model.parameters())


def _cnn(flatten_head: bool = False) -> ArchGraph:
    b = GraphBuilder("cnn")
    x = b.input("pixel_values", ("B", 3, 16, 16))
    h = b.op("relu", b.op("conv2d", x, out_channels=8, kernel_size=3, padding=1, scope="stem"))
    h = b.op("max_pool2d", h, kernel_size=2, stride=2)
    h = b.op("batch_norm", b.op("conv2d", h, out_channels=16, kernel_size=3, padding=1, scope="conv2"), scope="bn")
    if flatten_head:  # a head whose width depends on the image size
        h = b.op("flatten", h, start_dim=1)
    else:
        h = b.op("flatten", b.op("adaptive_avg_pool2d", h, output_size=[1, 1]), start_dim=1)
    b.output(b.op("linear", b.op("relu", b.op("linear", h, out_features=32, scope="fc1")), out_features=5,
                  scope="fc2"))
    return b.build()


@pytest.mark.parametrize("shape, classes", IMAGE_TASKS)
@pytest.mark.parametrize("flatten_head", [False, True])
def test_cnn_follows_channels_size_and_classes(shape, classes, flatten_head):
    g = _cnn(flatten_head)
    before = g.to_json()
    g2 = retarget(g, shape, num_classes=classes)
    assert g.to_json() == before  # the input graph is untouched
    stem = next(n for n in g2 if n.scope == "stem")
    assert stem.params["weight"][1] == shape[0]
    assert g2.inputs[0].shape == ["B", *shape]
    assert next(n for n in g2 if n.scope == "fc2").params["weight"][0] == classes
    if flatten_head:  # fc1 re-derives its input features from the new feature map
        side = shape[1] // 2
        assert next(n for n in g2 if n.scope == "fc1").params["weight"][1] == 16 * side * side
    _runs(g2, (2, classes))
    assert g2.to_module()(*example_inputs(g2, dims={"B": 3})).shape == (3, classes)


def _vit(tokens_side: int = 4, patch: int = 4) -> ArchGraph:
    """Patch embedding + class token + a learned position table added as it is (concrete token count)."""
    b = GraphBuilder("vit")
    x = b.input("pixel_values", ("B", 3, tokens_side * patch, tokens_side * patch))
    p = b.op("conv2d", x, out_channels=16, kernel_size=patch, stride=patch, scope="patch")
    t = b.op("transpose", b.op("flatten", p, start_dim=2), dim0=1, dim1=2)  # (B, N, 16)
    cls = b.parameter("cls", [1, 1, 16])
    c = b.op("expand", cls, size=["B", -1, -1])
    t = b.op("cat", c, t, dim=1)
    pos = b.parameter("pos", [1, tokens_side * tokens_side + 1, 16])
    t = b.op("add", t, pos)
    q = b.op("unsqueeze", b.op("layer_norm", t, scope="norm"), dim=1)
    a = b.op("squeeze", b.op("scaled_dot_product_attention", q, q, q), dim=1)
    t = b.op("add", t, a)
    b.output(b.op("linear", b.op("select", t, dim=1, index=0), out_features=7, scope="head"))
    return b.build()


@pytest.mark.parametrize("shape, classes", IMAGE_TASKS[:2])
def test_vit_position_table_follows_the_token_count(shape, classes):
    g2 = retarget(_vit(), shape, num_classes=classes)
    side = shape[1] // 4
    assert next(n for n in g2 if n.op == "parameter" and n.param_name("data") == "pos").params["data"] == [
        1, side * side + 1, 16]
    _runs(g2, (2, classes))


def _lm(symbolic: bool, tie: bool = True) -> ArchGraph:
    b = GraphBuilder("lm", dims={"T": 12})
    t = "T" if symbolic else 12
    ids = b.input("input_ids", ("B", t), dtype="int64", range=[0, 40])
    mask = b.input("attention_mask", ("B", t), dtype="int64", range=[0, 2])
    tok = b.op("embedding", ids, num_embeddings=40, embedding_dim=16, scope="embed")
    pos = b.op("embedding", b.op("arange", end=t), num_embeddings=24, embedding_dim=16, scope="pos")
    x = b.op("add", tok, pos)
    keep = b.op("unsqueeze", b.op("to_dtype", mask, dtype="float32"), dim=-1)
    x = b.op("mul", x, keep)
    h = b.op("view", b.op("linear", x, out_features=16, scope="q"), size=["B", t, 2, 8])
    h = b.op("transpose", h, dim0=1, dim1=2)
    a = b.op("scaled_dot_product_attention", h, h, h, is_causal=True)
    a = b.op("reshape", b.op("transpose", a, dim0=1, dim1=2), shape=["B", t, 16])
    x = b.op("layer_norm", b.op("add", x, a), scope="norm")
    b.output(b.op("linear", x, out_features=40, bias=False, scope="lm_head", tie={"weight": tok} if tie else None))
    return b.build()


@pytest.mark.parametrize("symbolic", [True, False])
@pytest.mark.parametrize("seq_len, vocab", [(64, 103), (8, 20)])
def test_language_model_follows_vocabulary_and_length(symbolic, seq_len, vocab):
    g = _lm(symbolic)
    g2 = retarget(g, (seq_len,), vocab_size=vocab)
    assert [s.name for s in g2.inputs] == ["input_ids"]  # the mask became ones_like(input_ids)
    assert g2.inputs[0].range == [0, vocab]
    emb = next(n for n in g2 if n.scope == "embed")
    head = next(n for n in g2 if n.scope == "lm_head")
    assert emb.params["weight"] == head.params["weight"] == [vocab, 16]
    assert head.param_name("weight") == emb.param_name("weight")  # still tied: one tensor
    model = g2.to_module()
    assert sum(p.numel() for p in model.parameters()) == g2.num_params
    if symbolic:
        assert g2.inputs[0].shape == ["B", "T"] and g2.dims["T"] == seq_len
    else:
        assert g2.inputs[0].shape == ["B", seq_len]
    pos = next(n for n in g2 if n.scope == "pos")
    assert pos.params["weight"][0] >= seq_len  # the position table holds every position
    _runs(g2, (2, seq_len, vocab))


def test_backbone_without_head_gets_one():
    b = GraphBuilder("backbone")
    x = b.input("pixel_values", ("B", 3, 8, 8))
    h = b.op("conv2d", x, out_channels=6, kernel_size=3, scope="c")
    b.output(h, b.op("mean", h, dim=[2, 3]), keys=["last_hidden_state", "pooler_output"])
    g2 = retarget(b.build(), (1, 8, 8), num_classes=3)
    assert g2.output_kind == "tensor" and any(n.scope == "classifier" for n in g2)
    _runs(g2, (2, 3))


@pytest.mark.parametrize("grouped", [False, True])
def test_a_head_the_rest_cannot_follow_keeps_its_size_and_gets_a_new_head(grouped):
    b = GraphBuilder("reshaped-head")
    x = b.input("pixel_values", ("B", 1, 8, 8))
    if grouped:  # the last layer is a grouped conv: 10 outputs cannot be split into 4 groups
        h = b.op("conv2d", b.op("conv2d", x, out_channels=8, kernel_size=3, scope="c"), out_channels=8,
                 kernel_size=1, groups=4, scope="last")
        b.output(h)
    else:  # the last linear's 64 features are reshaped to 4 x 16
        h = b.op("linear", b.op("flatten", x, start_dim=1), out_features=64, scope="last")
        b.output(b.op("reshape", h, shape=["B", 4, 16]))
    g2 = retarget(b.build(), (1, 8, 8), num_classes=10)
    assert g2.meta["retarget"].get("new_head") is True
    last = next(n for n in g2 if n.scope == "last")
    assert last.params["weight"][0] in (8, 64)  # kept its size
    assert any(n.scope == "classifier" for n in g2)
    _runs(g2, (2, 10))


def test_what_cannot_be_retargeted_says_why():
    with pytest.raises(GraphError, match="needs int64 token ids"):
        retarget(_cnn(), (64,), vocab_size=10)
    with pytest.raises(GraphError, match="float input of rank 3"):
        retarget(_lm(True), (1, 40), num_classes=10)
    with pytest.raises(GraphError, match=r"reads it as a \(1, 1, 40\) image, which it cannot take: .*max_pool2d"):
        retarget(_cnn(), (1, 40), num_classes=10)  # a 2x2 pool cannot take a height of 1
    with pytest.raises(GraphError, match="float input of rank 4"):
        retarget(_lm(True), (1, 28, 28), num_classes=10)
    with pytest.raises(GraphError, match=r"input_shape is \(T,\)"):
        retarget(_lm(True), (1, 28), vocab_size=10)


def test_tied_weights_stay_one_parameter_count():
    g = _lm(True, tie=True)
    untied = _lm(True, tie=False)
    g2, u2 = retarget(g, (16,), vocab_size=50), retarget(untied, (16,), vocab_size=50)
    assert u2.num_params - g2.num_params == 50 * 16


# --------------------------------------------------------------------------- the shipped dataset
FAMILIES = {
    "image": ["random-cnn", "vit", "convnext", "resnet", "swin", "mobilenet_v2"],
    "text": ["random-transformer", "bert", "llama", "gpt_neox", "t5", "qwen2_moe", "deepseek_v2", "qwen2_5_vl_text"],
}


@pytest.fixture(scope="module")
def shipped():
    from mad.data import load_default

    dd = load_default()
    found: dict[str, ArchGraph] = {}
    for split in dd:
        for fam, gj in zip(dd[split]["family"], dd[split]["graph"]):
            if fam in FAMILIES["image"] + FAMILIES["text"] and fam not in found:
                found[fam] = ArchGraph.from_json(gj)
    return found


@pytest.mark.parametrize("family", FAMILIES["image"])
def test_shipped_image_graphs_take_both_image_tasks(shipped, family):
    if family not in shipped:
        pytest.skip(f"{family} is not in the shipped dataset")
    torch.set_num_threads(1)
    for shape, classes in IMAGE_TASKS[:2]:
        _runs(retarget(shipped[family], shape, num_classes=classes), (2, classes))


@pytest.mark.parametrize("family", FAMILIES["text"])
def test_shipped_text_graphs_take_the_chars_task(shipped, family):
    if family not in shipped:
        pytest.skip(f"{family} is not in the shipped dataset")
    torch.set_num_threads(1)
    _runs(retarget(shipped[family], (64,), vocab_size=103), (2, 64, 103))
