"""Texture: UV-space albedo synthesis (multi-resolution fitting, delighting and completion follow).

Nothing is public here yet beyond what is listed in ``__all__``.
"""
__all__: list[str] = []
