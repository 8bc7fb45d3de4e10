"""Network definitions: tables in the papers' form, one builder, one registry."""
from .registry import MODELS, ModelSpec, Pretrained, get_spec, list_models, register  # noqa: F401
