"""Strand hair (orientation maps, 3D fields, growth, styles, strand I/O): not implemented yet."""
__all__: list[str] = []
