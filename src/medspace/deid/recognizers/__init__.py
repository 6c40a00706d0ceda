"""Built-in PHI recognisers. Importing this package registers them (see `base.register`)."""

from medspace.deid.recognizers import (  # noqa: F401  (imported to register)
    address_en,
    address_zh,
    contact,
    dates,
    ids,
    names_en,
    names_zh,
    orgs,
    phones,
)
from medspace.deid.recognizers.base import (
    PatternRecognizer,
    Recognizer,
    recognizers_for,
    register,
    registered,
)

__all__ = ["PatternRecognizer", "Recognizer", "recognizers_for", "register", "registered"]
