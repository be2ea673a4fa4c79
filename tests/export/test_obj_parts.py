"""write_obj_parts: several textured parts in one OBJ/MTL, each image in its own file."""

import numpy as np
from PIL import Image

from helpers import uv_sphere
from machlib.export import ObjPart, write_obj_parts


def test_each_textured_part_keeps_its_own_image(tmp_path):
    """The skin's albedo is ``avatar_albedo.png``; a later part's own texture (an iris) goes to
    ``avatar_<part>_albedo.png`` instead of overwriting it (as it did when the eyes got textures)."""
    mesh = uv_sphere(8, 6, radius=0.1)
    skin = np.full((8, 8, 3), (200, 150, 120), np.uint8)
    iris = np.full((4, 4, 3), (40, 90, 30), np.uint8)
    parts = [ObjPart("head", mesh, (1.0, 1.0, 1.0), 0.5, 0.0, 1.0, skin),
             ObjPart("iris L", mesh, (1.0, 1.0, 1.0), 0.5, 0.0, 1.0, iris)]
    files = write_obj_parts(tmp_path, parts)
    assert files == ["avatar.obj", "avatar.mtl", "avatar_albedo.png", "avatar_iris_L_albedo.png"]
    assert (np.asarray(Image.open(tmp_path / "avatar_albedo.png")) == skin).all()
    assert (np.asarray(Image.open(tmp_path / "avatar_iris_L_albedo.png")) == iris).all()
    mtl = (tmp_path / "avatar.mtl").read_text()
    assert "map_Kd avatar_albedo.png" in mtl and "map_Kd avatar_iris_L_albedo.png" in mtl
