"""mad.generator: architectures from a sentence, completions of partial graphs, edits by instruction.

``gen = mad.generator.load("default")``; ``gen.suggest(prompt)``, ``gen.complete(partial)``,
``gen.edit(graph, instruction)``. See :mod:`mad.generator.api`.
"""

from .api import Generator, GeneratorError, load, runs
from .constraints import Constraints, adherence, check, constraints_of
from .edit import EDITS, EditSpec, apply_edit, parse_instruction
from .model import GeneratorConfig, GraphTransformer
from .prompt import PROMPTS, parse_prompt
from .text_encoder import TextEncoder

__all__ = [
    "Constraints",
    "EDITS",
    "EditSpec",
    "Generator",
    "GeneratorConfig",
    "GeneratorError",
    "GraphTransformer",
    "PROMPTS",
    "TextEncoder",
    "adherence",
    "apply_edit",
    "check",
    "constraints_of",
    "load",
    "parse_instruction",
    "parse_prompt",
    "runs",
]
