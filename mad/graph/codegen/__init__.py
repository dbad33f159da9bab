"""to_code(): readable PyTorch source of an ``nn.Module`` equivalent to an ArchGraph.

The emitted file imports ``torch`` (and ``base64`` when it carries tensor
values) and defines one ``nn.Module`` subclass:

- ``__init__`` builds the parameter/buffer tree that
  :class:`~mad.graph.module.ArchModule` builds (read off an ArchModule made on
  the ``meta`` device), so ``state_dict()`` has the same keys, in the same
  order, with the same shapes and dtypes, and
  ``load_state_dict(g.to_module().state_dict())`` works strictly. Standard
  layers are literal constructor calls (``nn.Linear(64, 256)``), scopes are
  ``nn.Module()`` containers (commented with the source class where the graph
  records it), numbered children sit in an ``nn.ModuleList``
  (``self.encoder.layer[0].attention``), free tensors are ``nn.Parameter`` /
  ``register_buffer``, tied weights are aliases (a head tied to an embedding
  is an ``nn.Linear`` whose weight is the embedding's), and buffers that no
  state dict restores get their values back (a literal, ``torch.arange(...)``,
  ``torch.ones(...).tril()``..., or base64 text decoded by a small helper at
  the end of the file).
- ``forward`` has one line per node, in topological order, grouped by scope
  under ``# scope`` comments and ending in ``# (shape)`` comments. Layers are
  called as modules; elementwise ops read as operators where that is exact
  (``a + b``, ``x * 0.5``, ``a @ b``); common ops as ``torch``/``F``/tensor
  methods (``x.view(2, 8, 4)``, ``F.gelu(x)``, ``torch.cat([a, b], dim=1)``,
  ``x[:, 1:5]``); every other op as ``torch.ops.aten.<packet>.<overload>(...)``
  with the arguments :func:`~mad.graph.ops.call.call_op` passes (recorded from
  ``call_op`` itself), which is the op and therefore always exact. Ops that
  are not torch ops have their run function copied into the file (or
  imported when it reads module globals).

On purpose, dropout ops and batch-norm layers follow the module's
``train()``/``eval()`` mode, as hand-written code does; in ``eval()`` mode
they agree with the graph captured in eval mode.
"""
from __future__ import annotations

from .emitter import to_code
from .op_forms import _EMITTERS  # noqa: F401  (the table forward reads; replace it here to switch the forms off)

__all__ = ["to_code"]
