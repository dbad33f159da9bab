"""The ``mad`` command: convert models to graphs, inspect, draw and print them.

Commands::

    mad convert SOURCE -o graph.json [--set key=value ...] [--device meta] [--input-shape 1,3,32,32]
    mad info graph.json
    mad show graph.json -o graph.svg|png|pdf|dot [--depth N]
    mad code graph.json [-o model.py]
    mad ops [PATTERN] [--category layer]
    mad dataset build OUT [--zoo all] [--variants N] [--random N] [--workers 2]
    mad dataset info DIR|default ; mad dataset show DIR|default ID -o graph.svg
    mad train GRAPH_OR_MODEL --task mnist5k --steps 500 [-o run/]

SOURCE is a HuggingFace model type (``bert``: built small from its config,
random weights, nothing downloaded), ``path/file.py:ClassName[:args]`` (the
class is imported from the file and instantiated with ``args``, e.g.
``net.py:MLP:64,depth=2``), or an ``.onnx`` file.

Every command takes ``--json`` (machine-readable output on stdout and
nothing else). Global options go before the command: ``--version``,
``-v/--verbose`` (repeat for debug logs), ``--debug`` (show tracebacks).

Errors in what the user gave (missing file, malformed JSON, invalid graph,
unknown op, unsupported model type, bad SOURCE) print one red line
``error: ...`` to stderr and exit with code 2; a conversion or internal
failure prints one line and exits with code 1.
"""

from .app import app, main
from .common import CliError

__all__ = ["CliError", "app", "main"]
