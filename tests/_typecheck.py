"""The runtime type checker that the jaxtyping import hook applies to machlib during tests."""

from beartype import BeartypeConf, beartype

#: beartype with PEP 484's implicit numeric tower (an ``int`` is a valid ``float``).
typechecker = beartype(conf=BeartypeConf(is_pep484_tower=True))
