"""Run by tests/character/test_character.py in a subprocess with Blender's Python module (bpy):
import a machlib GLB with Blender's own glTF importer and report, as JSON on stdout, what a
technical artist would look at: shape keys that move vertices, an armature that deforms the head,
hair that renders (Cycles, CPU) when shown and not when hidden, and the head's PBR maps wired
as Blender wires them (normal map through a Normal Map node, roughness and specular linear)."""

import json
import sys

import bpy
import mathutils
import numpy as np


def main(glb: str, png_dir: str) -> dict:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.import_scene.gltf(filepath=glb)
    objs = {o.name: o for o in bpy.data.objects}
    head, hair = objs["head"], objs["hair"]
    keys = head.data.shape_keys.key_blocks
    basis = np.array([v.co[:] for v in keys[0].data])
    moves = {k.name: float(np.abs(np.array([v.co[:] for v in k.data]) - basis).max()) for k in keys[1:]}
    arm = [o for o in bpy.data.objects if o.type == "ARMATURE"][0]
    deps = bpy.context.evaluated_depsgraph_get()

    def head_vertices():
        deps.update()
        ev = head.evaluated_get(deps)
        m = ev.to_mesh()
        out = np.array([v.co[:] for v in m.vertices])
        ev.to_mesh_clear()
        return out

    rest = head_vertices()
    bone = arm.pose.bones["head"]
    bone.rotation_mode = "XYZ"
    bone.rotation_euler = (0.3, 0.0, 0.0)
    armature_move = float(np.abs(head_vertices() - rest).max())
    bone.rotation_euler = (0.0, 0.0, 0.0)

    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = 4
    scene.render.resolution_x = scene.render.resolution_y = 96
    scene.render.film_transparent = True
    cam = bpy.data.objects.new("cam", bpy.data.cameras.new("cam"))
    scene.collection.objects.link(cam)
    scene.camera = cam
    box = np.array([hair.matrix_world @ mathutils.Vector(c) for c in hair.bound_box])
    center = mathutils.Vector(box.mean(0))
    size = float(np.ptp(box, axis=0).max())
    cam.location = center + mathutils.Vector((0.0, 0.0, 3.0 * size))  # from above: the crown
    cam.rotation_euler = (center - cam.location).to_track_quat("-Z", "Y").to_euler()
    sun = bpy.data.objects.new("sun", bpy.data.lights.new("sun", "SUN"))
    scene.collection.objects.link(sun)
    sun.rotation_euler = cam.rotation_euler

    def shot(name):
        scene.render.filepath = f"{png_dir}/{name}.png"
        bpy.ops.render.render(write_still=True)
        img = bpy.data.images.load(scene.render.filepath)
        px = np.array(img.pixels[:]).reshape(img.size[1], img.size[0], 4)
        return px

    links = [(lk.from_node.type, lk.from_socket.name, lk.to_node.type, lk.to_socket.name)
             for lk in head.active_material.node_tree.links]
    images = {n.name: n.image.colorspace_settings.name for n in head.active_material.node_tree.nodes
              if n.type == "TEX_IMAGE"}
    maps = {"normal_map": any(t == "NORMAL_MAP" and s == "Color" for _, _, t, s in links)
            and any(f == "NORMAL_MAP" and s == "Normal" for f, _, _, s in links),
            "roughness": any(s == "Roughness" for _, _, t, s in links if t == "BSDF_PRINCIPLED"),
            "specular": any(s == "Specular IOR Level" for _, _, t, s in links if t == "BSDF_PRINCIPLED"),
            "colorspaces": sorted(images.values())}
    shown = shot("hair")
    hair.hide_render = True
    hidden = shot("bald")
    changed = float((np.abs(shown - hidden).sum(-1) > 0.1).mean())
    return {"shape_keys": len(keys) - 1, "moves": moves, "armature_move": armature_move,
            "hair_type": hair.type, "hair_polygons": len(hair.data.polygons), "hair_pixels": changed,
            "bones": len(arm.data.bones), "maps": maps}


if __name__ == "__main__":
    print("BLENDER_CHECK " + json.dumps(main(sys.argv[1], sys.argv[2])))
