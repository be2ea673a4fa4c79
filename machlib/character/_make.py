"""``machlib make``: portrait or prompt → a complete, animatable character with previews."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple, Optional, Union

import jax
import jax.numpy as jnp
import numpy as np

from .._errors import InputError
from .._image import save_png
from .._mesh import Mesh, boundary_loops
from .._preview import orbit_camera
from .._threads import in_background, with_serial_blas
from .._scene import (
    ScenePart,
    preview_sheet,
    render_scene,
    three_sh_lights,
    turntable_cameras,
)
from .._version import __version__
from ..animation import (
    ARKIT_BLENDSHAPES,
    EMOTIONS,
    emotion_basis,
    emotion_vector,
    expression_weights,
)
from ..assets import (
    LexicalEmbedder,
    builtin_manifest,
    dress,
    human_body,
    make_bust,
    make_glasses,
    match_assets,
)
from ..assets._procedural import (
    _GARMENT_IDS,
    _GLASSES_IDS,
    GARMENT_COLORS,
    GARMENT_TYPES,
    GLASSES_STYLES,
)
from ..export._files import _deflate
from ..geometry import apply_shape, default_template, face_shape_preset, template_albedo
from ..geometry._human_fit import head_points
from ..hair import (
    HAIR_COLORS,
    HAIR_STYLES,
    StyleChoice,
    cleanup_strands,
    cleanup_to_count,
    grow_style,
    head_sdf_grid,
    style_for,
)
from ..human import PHENOTYPE_NAMES, HumanParams, attribute_human, symmetric_sliders
from ..pipeline import atomic_output_dir, human_report
from ..text import FaceAttributes, parse_prompt
from ._assemble import (
    ANCESTRY_SKIN_TONES,
    IRIS_DEFAULT,
    Character,
    _character_beard,
    _character_strands,
    _write_strand_files,
    build_character,
    character_glb,
    fit_detail_height,
    posed_parts,
    skin_tone_albedo,
    write_bundle,
    write_character_obj,
)
from ._read import glasses_lens, merge_attributes, read_attributes

__all__ = ["MakeOutput", "make_character", "write_make_outputs", "DEFAULT_PROMPT", "preview_images",
           "PREVIEW_EXPOSURE"]

#: Exposure of the character previews' directional light (:func:`preview_images`). The
#: delighting divides the photo by a shading whose mean over the seen face is 1, so the albedo
#: carries the photo's exposure; the previews' light (ambient 0.25 plus a key light above, right
#: of and in front of the camera, turning with it) gives the front view's face a mean of about
#: 0.71 (the default template's face region, weighted by its projected area), which showed the
#: skin about 9 L* darker than in the photo and read grey. 1 / 0.71: the face at the photo's
#: brightness (``tests/character/test_make.py`` recomputes it from the template).
PREVIEW_EXPOSURE = 1.4

DEFAULT_PROMPT = "an elderly woman with short gray hair, blue eyes and brown cat-eye glasses, wearing a navy suit"
"""The prompt used with the bundled portrait (Grace Hopper in uniform) when none is given."""


class MakeOutput(NamedTuple):
    """Everything :func:`make_character` computed.

    Attributes:
        character: the assembled :class:`Character`.
        mode: ``"image"`` (a photo), ``"prompt"`` (text → generated portrait → avatar) or
            ``"template"`` (text only, no diffusion weights: the template shaped and dressed).
        attributes: the parsed :class:`~machlib.text.FaceAttributes` (as a dict).
        expression: ``(52,)`` blendshape weights of the requested expression.
        assets: chosen assets with their match scores (hairstyle, glasses, garment).
        fit: the :class:`~machlib.pipeline.FitOutput` (None in ``template`` mode).
        texture: the :class:`~machlib.pipeline.TextureOutput` (None in ``template`` mode).
        hair: the :class:`~machlib.pipeline.HairOutput` (None in ``template`` mode).
        image: the portrait used (None in ``template`` mode).
        timings: seconds per stage.
        notices: messages for the user (e.g. why the template path was taken).
        reading: with a photo, what was read from it: ``{"sources": field → "prompt" / "photo" /
            "classifier" / "unset", "evidence": field → numbers}`` (see
            :func:`~machlib.character.read_attributes`); ``None`` without a photo.
    """

    character: Character
    mode: str
    attributes: dict
    expression: np.ndarray
    assets: dict
    fit: object
    texture: object
    hair: object
    image: Optional[np.ndarray]
    timings: dict
    notices: list
    reading: Optional[dict] = None


def _match(prompt_phrases, kind: str, allowed: Optional[set] = None) -> list:
    # the lexical embedder: no model to load (MiniLM's first load costs ~10 s of a ~60 s job)
    ranked = match_assets(prompt_phrases, builtin_manifest(), kind=kind, k=12, embedder=LexicalEmbedder())
    ranked = [m for m in ranked if allowed is None or m.asset.id in allowed]
    return [(m.asset.id, round(float(m.score), 4)) for m in ranked]


def _asset_choices(attrs, prompt: Optional[str]) -> dict:
    """Glasses, garment and iris: the attributes decide, the asset library is ranked by text.

    An attribute the prompt sets wins; where it sets none (a glasses style not named, no garment),
    the library's best match by text embedding decides. Every choice reports its top matches.
    """
    out: dict = {}
    text = prompt or ""
    g = attrs.glasses
    if g is not None and g != "none":
        ranked = _match([f"{g} glasses", text] if text else [f"{g} glasses"], "glasses")
        style = g if g in GLASSES_STYLES and g != "present" else None
        if style is None:
            by_id = {v: k for k, v in _GLASSES_IDS.items()}
            known = [(by_id[i], sc) for i, sc in ranked if i in by_id]
            clear = len(known) > 1 and known[0][1] - known[1][1] > 0.05  # a clear winner, else plain
            style = known[0][0] if clear else "square"
        out["glasses"] = {"style": style, "color": attrs.glasses_color, "matches": ranked[:3]}
    ranked = _match([f"wearing a {attrs.garment}", text] if attrs.garment else [text or "t-shirt"], "garment")
    garment = attrs.garment
    if garment is None:
        by_id = {v: k for k, v in _GARMENT_IDS.items()}
        garment = next((by_id[i] for i, sc in ranked if i in by_id and sc > 0.1), "t-shirt")
    out["garment"] = {"type": garment, "color": _garment_color(text), "matches": ranked[:3]}
    iris = attrs.iris_color or IRIS_DEFAULT
    out["iris"] = {"color": iris, "matches": _match([f"{iris} eyes"], "iris")[:3]}
    return out


def _garment_color(prompt: str) -> Optional[str]:
    """The colour word(s) right before a garment word in the prompt (``navy suit``), if any."""
    words = prompt.lower().replace(",", " ").replace(".", " ").split()
    garments = {g.split()[0] for g in GARMENT_TYPES} | {"tshirt", "t-shirt", "tee"}
    for i, w in enumerate(words):
        if w.rstrip("s") in garments or w in garments:
            for j in (i - 1, i - 2):
                if j >= 0:
                    two = " ".join(words[j:i])
                    if two in GARMENT_COLORS:
                        return two
                    if words[j] in GARMENT_COLORS:
                        return words[j]
    return None


def _template_head(attrs, *, seed: int):
    """A head without a photo: the human the attributes describe (gender, age, build, face, eye,
    nose, mouth and brow shapes; :func:`machlib.human.attribute_human`), or for a template
    without a human, the template deformed by the face-shape preset."""
    template = default_template()
    if template.human is not None:
        ph, sliders, _ = attribute_human(attrs)
        basis = symmetric_sliders()[0]
        params = HumanParams(ph, (basis @ sliders).astype(np.float32), np.zeros(len(template.human.model.unit_names),
                                                                                 np.float32))
        points = head_points(template, params)
        v = points[: template.human.topology.num_skin]
        return template, Mesh(v, template.mesh.faces, template.mesh.uv, template.mesh.faces_uv), params, points
    beta = face_shape_preset(attrs.face_shape or "oval")
    v = np.asarray(apply_shape(template, beta), dtype=np.float64)
    return template, Mesh(v, template.mesh.faces, template.mesh.uv, template.mesh.faces_uv), None, None


@with_serial_blas
def make_character(
    *,
    image: Optional[np.ndarray] = None,
    prompt: Optional[str] = None,
    hair: Optional[str] = None,
    expression: Optional[str] = None,
    weights=None,
    seed: int = 0,
    n_strands: int = 6000,
    n_points: int = 32,
    guides: Optional[int] = 600,
    portrait_steps: int = 30,
    portrait_size: int = 512,
    body: str = "bust",
    classifier=None,
    progress: Optional[Callable[[str], None]] = None,
    albedo_resolution: Optional[int] = None,
    delighter="sh",
) -> MakeOutput:
    """Run the whole job: attributes → (portrait) → geometry → texture → hair → assets → character.

    * ``image`` given: photo → avatar; the attributes the photo shows are read from it
      (:func:`~machlib.character.read_attributes`: glasses with style and colour, beard and
      moustache, skin tone; gender and age group with a ``classifier``), and the prompt's
      attributes (if any) win where they say something; they steer the irises, glasses, garment,
      beard and, without ``hair``, the hair colour.
    * only ``prompt``, with diffusion ``weights`` (:class:`~machlib.interop.DiffusionWeights`):
      visual clues → Stable Diffusion + ControlNet portrait → avatar (the full Mach path).
    * only ``prompt`` without weights: the template shaped by the face-shape preset, its albedo
      recoloured to the skin tone, hair grown from the matched library style, dressed by the
      attributes; a notice says why.

    Args:
        image: ``(H, W, 3)`` uint8 portrait.
        prompt: text description.
        hair: a library hairstyle to try on instead of the one retrieved from the photo.
        expression: ``"happiness=0.8,surprise=0.3"`` for the previews' posed views.
        weights: resolved diffusion weights for the prompt-only path (or None).
        seed: random seed (portrait noise, hair growth).
        n_strands: hair strands.
        n_points: points per strand.
        guides: grow this many guide strands and interpolate the rest (None: integrate every
            strand; see :func:`machlib.hair.grow_strands`).
        portrait_steps: denoising steps of the generated portrait (prompt-only path with weights).
        portrait_size: side of the generated portrait in pixels.
        body: for the human template, ``"bust"`` (head, neck, shoulders and upper torso) or
            ``"full"`` (the whole figure, skinned to all 163 bones, with trousers and shoes).
        classifier: with a photo, reads gender and age group: an
            :class:`~machlib.character.AttributeClassifier`, or the path of a local CLIP folder
            (:class:`~machlib.interop.ClipAttributeClassifier`); ``None``: they stay unset.
        progress: optional callback called with each stage's name as it starts.
        albedo_resolution: ``2048`` or ``4096`` for a super-resolved head albedo
            (:func:`machlib.texture.super_resolve_albedo`: edge-aware upsampling of the 1024²
            albedo plus skin detail synthesised at the new scale) in the GLB, the OBJ and
            ``albedo.png``; ``None`` (default) keeps 1024² (the default avatar stays under 12 MB).
        delighter: photo path only: ``"sh"`` (default), ``"flax"`` or a weights file, as
            :func:`machlib.pipeline.texture_portrait`'s ``delighter``.

    Returns:
        The :class:`MakeOutput`.

    Raises:
        InputError: bad input (no image and no prompt is fine: the caller passes the bundled
            portrait), unknown hairstyle, bad expression, no face in the photo, ...
    """
    say = progress or (lambda _: None)
    timings: dict = {}
    notices: list = []
    t_start = time.perf_counter()

    def timed(name, fn):
        say(name)
        t = time.perf_counter()
        out = fn()
        timings[name] = round(time.perf_counter() - t, 3)
        return out

    if image is None and not (prompt and prompt.strip()):
        raise InputError("make_character: give an image, a prompt, or both")
    if body not in ("bust", "full"):
        raise InputError(f"body must be 'bust' or 'full', got {body!r}")
    if albedo_resolution not in (None, 2048, 4096):
        raise InputError(f"make_character: albedo_resolution must be 2048, 4096 or None, got {albedo_resolution!r}")
    if hair is not None and hair not in HAIR_STYLES:
        raise InputError(f"unknown hairstyle {hair!r}; known: {', '.join(HAIR_STYLES)}")
    if delighter not in (None, "sh", "flax") and not (isinstance(delighter, (str, os.PathLike))
                                                      and Path(delighter).is_file()):
        raise InputError(f"make_character: delighter must be 'sh', 'flax' or a weights file, got {delighter!r}")
    if guides is not None:
        guides = max(1, min(int(guides), int(n_strands)))
    mix = emotion_vector(expression) if expression else np.zeros(len(EMOTIONS))
    expr_w = np.asarray(expression_weights(np.asarray(mix, np.float32)), np.float64)
    attrs = timed("attributes", lambda: parse_prompt(prompt).attributes if prompt and prompt.strip() else FaceAttributes())
    mode = "image" if image is not None else "prompt" if weights is not None else "template"
    if mode == "template":
        notices.append("no diffusion weights are configured (see `machlib portrait --check-weights`): the avatar "
                       "is the template head shaped and dressed by the prompt's attributes, not a generated portrait")
    if mode == "prompt":
        from ..interop import generate_portrait, load_portrait_pipeline

        def gen():
            pipe = load_portrait_pipeline(weights)
            out = generate_portrait(pipe, attrs, seed=seed, steps=int(portrait_steps), size=int(portrait_size))
            return np.asarray(out.image)

        image = timed("portrait", gen)
    prompt_attrs = attrs
    if classifier is not None and not hasattr(classifier, "classify"):
        if image is None:
            classifier = None  # only photos are classified
        else:
            from ..interop import ClipAttributeClassifier

            classifier = timed("classifier", lambda: ClipAttributeClassifier(classifier))
    reading = None
    assets = _asset_choices(attrs, prompt) if image is None else {}
    fit = tex = hair_out = None
    iris = attrs.iris_color or IRIS_DEFAULT
    eye_colors = None
    if image is not None:
        from .. import pipeline

        # what hides the face's skin (hair mask, glasses, an open mouth, the no-skin test at the
        # face's edge) needs only the photo and its landmarks: it is found on a second thread
        # while the template is built and the fit compiled and run (a core is mostly idle then)
        masked: dict = {}

        def start_mask(img, landmarks):
            masked["wait"] = in_background(lambda: pipeline.portrait_occlusion(img, landmarks),
                                           name="machlib-occlusion")

        try:
            fit = pipeline.fit_portrait(image, attributes=attrs if prompt and prompt.strip() else None, progress=say,
                                        on_landmarks=start_mask)
        except Exception:
            if "wait" in masked:  # no work left running behind the caller
                masked["wait"](raise_error=False)
            raise
        timings.update({f"fit.{k}": round(float(v), 3) for k, v in fit.timings.items()})
        # the completion's two big programs compile on the other core while the texture fit runs
        from ..texture import TextureFitConfig
        from ..texture._complete import warm_up_completion

        warm_up_completion(TextureFitConfig().resolutions[-1], template=fit.template)
        # the prompt steers the hair: its colour always, its style when it names one (else retrieval)
        color = attrs.hair_color if attrs.hair_color in HAIR_COLORS else None
        style = hair if hair is not None else (attrs.hairstyle if attrs.hairstyle in HAIR_STYLES else None)
        # The texture and hair stages share the hair mask and run side by side: the texture stage
        # in a second thread, the hair stage here, waiting for the texture stage's light only to
        # read the hair's colour at its end. XLA's compilations and programs and numpy's large
        # steps release the GIL, so on two cores the first run's compilations of the two stages
        # overlap (cold `machlib make` about 9 s sooner) and a warm run's too (about 2 s). Their
        # timings overlap; the results are those of the two stages run one after the other.
        occluded = masked["wait"]()
        # the fitted surface's detail for the normal map needs only the fit: beside the stages too
        # (it is low-passed to the 64² triplane's texel: 512² holds all of it)
        detail_side = min(int(TextureFitConfig().resolutions[-1]), 512)
        t_detail = time.perf_counter()
        detailed = in_background(lambda: (fit_detail_height(fit.result, fit.template, resolution=detail_side),
                                          time.perf_counter() - t_detail), name="machlib-detail")
        textured = in_background(lambda: pipeline.texture_portrait(fit, delighter=delighter, occluded=occluded,
                                                                   progress=say), name="machlib-texture")
        try:
            hair_out = pipeline.hair_portrait(fit, style=style, color=color, n_strands=n_strands, n_points=n_points,
                                              guides=guides, seed=seed, mask=occluded.hair,
                                              lighting=lambda: textured().lighting, progress=say)
            tex = textured()
        except Exception:
            textured(raise_error=False)  # no stage left running behind the caller
            detailed(raise_error=False)
            raise
        timings.update({f"texture.{k}": round(float(v), 3) for k, v in tex.timings.items()})
        timings.update({f"hair.{k}": round(float(v), 3) for k, v in hair_out.timings.items()})
        # what the photo shows; the prompt wins where it says something. Hair: the hair stage's
        # reading of length, colour and style when it provides one (HairOutput.reading)
        photo = timed("read attributes", lambda: read_attributes(
            image, fit.landmarks, glasses=tex.glasses, ita=tex.metrics.get("ita_degrees"), classifier=classifier,
            hair=getattr(hair_out, "reading", None), lighting=tex.lighting))
        attrs, sources = merge_attributes(prompt_attrs, photo)
        # the eyes' colours as read (delit); a prompt's iris colour wins over the photo's
        iris = attrs.iris_color or IRIS_DEFAULT
        seen = photo.evidence.get("iris_color", {})
        eye_colors = {"iris": seen.get("iris_rgb") if sources.get("iris_color") == "photo" else None,
                      "sclera": seen.get("sclera_rgb")}
        reading = {"sources": sources, "evidence": photo.evidence}
        notices.extend(photo.notices)
        assets = _asset_choices(attrs, prompt)
        lens = glasses_lens(tex.glasses) if "glasses" in assets and tex.glasses is not None else None
        if lens is not None:  # the 3D frames sit where the photo's do, whatever style a prompt names
            assets["glasses"]["lens"] = {"drop": round(lens[0], 4), "height": round(lens[1], 4),
                                         "units": "pupil distances"}
        if assets["garment"]["color"] is None:  # the prompt names no colour: the photo's clothes'
            worn = _photo_garment(image, fit.landmarks, tex.hair)
            assets["garment"].update(color=worn.color, color_source="photo" if worn.color else "default",
                                     photo={"srgb": worn.srgb, "pixels": worn.pixels, "note": worn.note})
        template, head = fit.template, fit.result.mesh
        human = None
        if fit.result.human is not None:
            human = (fit.result.human.params, fit.result.human.neutral_points)
            head = Mesh(human[1][: template.human.topology.num_skin], head.faces, head.uv, head.faces_uv)
        albedo = tex.albedo
        # the head's roughness and specular maps: the regions' with the photo's own sheen, where the
        # texture stage took it out of the albedo (texture_portrait(sheen=True))
        pbr_maps = None if tex.gloss is None else (tex.roughness_map, tex.specular_map)
        detail, seconds = detailed()
        timings["detail"] = round(seconds, 3)
        if min(int(np.shape(albedo)[0]), 512) != detail_side:  # (a texture stage of another resolution)
            detail = timed("detail", lambda: fit_detail_height(fit.result, template,
                                                              resolution=min(int(np.shape(albedo)[0]), 512)))
        strands = np.asarray(hair_out.strands.points, np.float32)
        hair_rgb = tuple(hair_out.color["rgb"])
        strand_rgb = np.asarray(hair_out.strands.color, np.float32)  # the photo's shades around hair_rgb
        assets["hairstyle"] = {"style": hair_out.style, "mode": hair_out.mode,
                               "matches": [(m.name, round(float(m.score), 4)) for m in hair_out.matches[:3]],
                               "reading": hair_out.reading,
                               "choice": (hair_out.choice or {}).get("summary")}
    else:
        detail = strand_rgb = pbr_maps = None
        template, head, _human_params, _human_points = timed("shape", lambda: _template_head(attrs, seed=seed))
        human = (_human_params, _human_points) if _human_params is not None else None

        tone, tone_source = _skin_tone_of(attrs)
        albedo = timed("albedo", lambda: skin_tone_albedo(template_albedo(1024), tone))
        choice = _style_for(attrs, hair)
        style = choice.style
        strands, hair_rgb = timed("hair", lambda: _template_hair(template, head, style, attrs, seed=seed,
                                                                n_strands=n_strands, n_points=n_points,
                                                                guides=guides))
        assets["hairstyle"] = {"style": style, "mode": "library", "choice": choice.reason,
                               "matches": list(choice.candidates[:3])}
        albedo, assets["skin"] = timed("albedo.marks", lambda: _attribute_skin(albedo, attrs, template, hair_rgb,
                                                                               seed=seed))
        assets["skin"].update(tone=tone, tone_source=tone_source)

    if albedo_resolution is not None:
        albedo = timed("albedo.super-resolve", lambda: _super_resolved(albedo, template, albedo_resolution, seed=seed))

    def assemble():
        glasses = None
        if "glasses" in assets:
            g = assets["glasses"]
            lens = (g["lens"]["drop"], g["lens"]["height"]) if "lens" in g else None
            glasses = make_glasses(g["style"], color=g["color"], template=head,
                                   head_sdf=None if hair_out is None else hair_out.sdf, lens=lens)
        gar = assets["garment"]
        info = {"attributes": attrs.to_dict() if hasattr(attrs, "to_dict") else dataclasses.asdict(attrs),
                "assets": assets, "iris_color": iris}
        bust = dressed = None
        albedo_used = albedo
        if human is not None:
            skin = _neck_color(albedo, template)
            albedo_used = _blend_neck(albedo, template, skin)
            figure = human_body(human[0], human[1], extent=body, skin_color=skin)
            dressed = (figure, dress(figure, gar["type"], color=gar["color"], skin_color=skin))
            info["body"] = {"extent": body, "height_m": round(float(figure.height), 3)}
            if mode == "template":
                _, _, why = attribute_human(attrs)
                info["human"] = {"phenotype": {n: round(float(v), 4) for n, v in
                                               zip(PHENOTYPE_NAMES, np.asarray(human[0].phenotype))},
                                 "set_by_attributes": why}
        else:
            bust = make_bust(gar["type"], color=gar["color"], template=head)
        return build_character(head, albedo_used, template=template, hair=strands, hair_color=hair_rgb,
                               hair_colors=strand_rgb, iris_color=iris, eye_colors=eye_colors, glasses=glasses,
                               bust=bust, body=dressed, info=info, human=human,
                               eyelash_color=attrs.hair_color if attrs.hair_color in ("black", "brown", "blonde",
                                                                                      "red", "auburn") else None,
                               beard=beard, detail_height=detail, pbr_maps=pbr_maps)

    beard, beard_style = timed("beard", lambda: _character_beard(
        attrs.beard, attrs.moustache, head, template=template, color=hair_rgb, seed=seed,
        sdf=None if hair_out is None else hair_out.sdf))
    if beard_style is not None:
        assets["beard"] = {"style": beard_style, "matches": _match([f"{beard_style} beard", prompt or ""], "beard")[:3]}
    character = timed("assemble", assemble)
    timings["make"] = round(time.perf_counter() - t_start, 3)
    attr_dict = character.info["attributes"]
    return MakeOutput(character, mode, attr_dict, expr_w, assets, fit, tex, hair_out, image, timings, notices,
                      reading)


def _super_resolved(albedo, template, resolution: int, *, seed: int) -> np.ndarray:
    """The albedo at ``resolution`` (:func:`machlib.texture.super_resolve_albedo`, skin detail
    outside the eyes, brows, lips, nostrils and scalp), or unchanged when it is that large."""
    from ..texture import super_resolve_albedo

    a = np.asarray(albedo)
    R = a.shape[0]
    if R >= resolution:
        return albedo
    if resolution % R or resolution // R not in (2, 4):
        import jax

        a = _float_image(a)
        a = np.clip(np.asarray(jax.image.resize(a, (resolution // 2, resolution // 2, 3), "lanczos3")), 0.0, 1.0)
        R = a.shape[0]
    skin = np.ones((R, R), np.float32)
    for k in ("eyes", "brows", "lips", "nostrils", "scalp"):
        if k in template.regions:
            m = np.asarray(template.regions[k], np.float32)
            idx = np.arange(R) * m.shape[0] // R
            skin *= 1.0 - m[np.ix_(idx, idx)]
    return super_resolve_albedo(a, resolution, mask=skin, seed=seed)


def _float_image(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else np.clip(a.astype(np.float32), 0.0, 1.0)


def _neck_color(albedo, template) -> tuple:
    """Linear RGB of the head's neck in the albedo (the body's skin continues it)."""
    from PIL import Image

    a = np.asarray(albedo)
    a = a.astype(np.float64) / 255.0 if a.dtype == np.uint8 else np.clip(a.astype(np.float64), 0, 1)
    neck = np.asarray(template.regions["neck"], np.float64)
    m = np.asarray(Image.fromarray((neck * 255).astype(np.uint8)).resize(a.shape[1::-1], Image.BILINEAR)) > 127
    srgb = np.median(a[m][:, :3], 0) if m.any() else np.median(a.reshape(-1, a.shape[-1])[:, :3], 0)
    lin = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    return tuple(float(c) for c in lin)


def _blend_neck(albedo, template, skin_linear) -> np.ndarray:
    """The albedo with its neck fading into the body's flat skin colour over the last 4 cm above
    the cut, so the seam between the textured head and the body does not show."""
    from PIL import Image
    from scipy.spatial import cKDTree


    a = np.asarray(albedo)
    a = a.astype(np.float64) / 255.0 if a.dtype == np.uint8 else np.clip(a.astype(np.float64), 0, 1)
    R = 256
    pos = np.asarray(template.position_map(R), np.float64).reshape(-1, 3)
    skin = np.asarray(template.mesh.vertices, np.float64)
    (loop,) = boundary_loops(template.mesh.faces)
    d, _ = cKDTree(skin[loop]).query(pos)
    t = np.clip((d - 0.008) / 0.032, 0.0, 1.0)
    w = (1.0 - t * t * (3 - 2 * t)).reshape(R, R).astype(np.float32)
    w = np.asarray(Image.fromarray(w).resize(a.shape[1::-1], Image.BILINEAR), np.float64)[..., None]
    lin = np.asarray(skin_linear, np.float64)
    srgb = np.where(lin <= 0.0031308, lin * 12.92, 1.055 * np.power(lin, 1 / 2.4) - 0.055)
    out = a[..., :3] * (1.0 - w) + w * srgb
    return out.astype(np.float32)


_LEVELS = {"none": 0.0, "light": 0.3, "moderate": 0.6, "heavy": 0.95}
#: sRGB lipstick colours of the ``lipstick_color`` attribute
LIPSTICK_COLORS = {"red": (0.72, 0.10, 0.18), "pink": (0.90, 0.42, 0.55), "cameo": (0.80, 0.52, 0.52),
                   "nude": (0.76, 0.54, 0.46), "coral": (0.95, 0.42, 0.36), "berry": (0.52, 0.10, 0.28)}
_NATURAL_HAIR = ("black", "brown", "blonde", "red", "auburn", "gray", "white")


def _photo_garment(image, landmarks, hair_mask):
    """The colour of the clothes the photo shows (:func:`~machlib.character.read_garment_color`),
    with the texture stage's person and hair masks when it made them."""
    from ._clothes import read_garment_color

    person = None if hair_mask is None else hair_mask.person
    hair = None if hair_mask is None else hair_mask.mask
    return read_garment_color(image, landmarks, person=person, hair=hair)


def _skin_tone_of(attrs) -> tuple[str, str]:
    """The skin tone of a character without a photo and where it came from: the prompt's
    ``skin_tone``, else its ``ancestry``'s (:data:`ANCESTRY_SKIN_TONES`), else ``light``."""
    if attrs.skin_tone:
        return attrs.skin_tone, "prompt"
    if attrs.ancestry in ANCESTRY_SKIN_TONES:
        return ANCESTRY_SKIN_TONES[attrs.ancestry], "ancestry"
    return "light", "default"


def _hair_color_name(attrs) -> str:
    """The hair colour of a character without a photo: the prompt's, else gray for the elderly,
    black for a stated ancestry other than European, and brown for everyone else."""
    if attrs.hair_color in HAIR_COLORS:
        return attrs.hair_color
    if attrs.age_group == "elderly":
        return "gray"
    return "black" if attrs.ancestry not in (None, "european") else "brown"


def _attribute_skin(albedo, attrs, template, hair_rgb, *, seed: int):
    """A template albedo marked as the prompt describes the skin (without a photo): wrinkles and
    age spots from ``wrinkles`` or else the age group, ``freckles``, ``moles``
    (:func:`machlib.texture.skin_marks`); brows in the natural hair colour
    (:func:`machlib.texture.recolor_brows`); ``makeup`` and ``lipstick_color``
    (:func:`machlib.texture.makeup`). Returns the albedo and what was applied (for the report)."""
    from ..texture import makeup, recolor_brows, skin_marks

    age = attrs.age_group
    marks = {"wrinkles": _LEVELS[attrs.wrinkles] if attrs.wrinkles in _LEVELS
             else {"elderly": 0.75, "middle-aged": 0.3}.get(age, 0.0),
             "age_spots": {"elderly": 0.5, "middle-aged": 0.1}.get(age, 0.0),
             "freckles": _LEVELS.get(attrs.freckles, 0.0), "moles": _LEVELS.get(attrs.moles, 0.0)}
    lm = np.asarray(template.landmark_uv, np.float32)
    out = jnp.asarray(albedo, jnp.float32)
    if any(marks.values()):
        out = skin_marks(out, lm, jax.random.key(seed), **marks)
    applied = {k: v for k, v in marks.items() if v}
    hair_name = _hair_color_name(attrs)
    if hair_name in _NATURAL_HAIR:
        # brows a little darker than the hair, and still part skin where the hair is gray or fair
        lin = np.asarray(hair_rgb, np.float64) * 0.8
        srgb = np.where(lin <= 0.0031308, lin * 12.92, 1.055 * np.power(lin, 1 / 2.4) - 0.055)
        fair = hair_name in ("gray", "white", "blonde")  # fair brows keep some of the darker base
        out = recolor_brows(out, lm, tuple(float(c) for c in srgb), strength=0.6 if fair else 0.85)
        applied["brows"] = hair_name
    level = {"light": 0.2, "moderate": 0.35, "heavy": 0.55}.get(attrs.makeup, 0.0)
    lip = attrs.lipstick_color if attrs.lipstick_color in LIPSTICK_COLORS else None
    if level or lip:
        out = makeup(out, lm, blush=level, eye_shadow=level, lipstick=0.7 if lip else level,
                     lipstick_color=LIPSTICK_COLORS[lip or "red"])
        applied["makeup"] = {"blush": level, "eye_shadow": level, "lipstick": 0.7 if lip else level,
                             "lipstick_color": lip or "red"}
    return np.asarray(out, np.float32), applied


def _style_for(attrs, hair: Optional[str]) -> StyleChoice:
    """The library style of a character without a photo: the caller's ``hair``, else what the
    prompt's hair attributes ask for (:func:`machlib.hair.style_for`: a named style, else length,
    texture, fringe, then gender and age), never a text ranking of the whole prompt (a "crop top"
    is not a crop)."""
    if hair is not None:
        return StyleChoice(hair, f"chosen by the caller: {hair}", (hair,))
    return style_for(hairstyle=attrs.hairstyle if attrs.hairstyle in HAIR_STYLES else None,
                     hair_length=attrs.hair_length, hair_texture=attrs.hair_texture, bangs=attrs.bangs,
                     gender=attrs.gender, age_group=attrs.age_group)


#: A coily style asked for as "short" or "very short" (a "short afro", a teeny-weeny afro): strand
#: length and the radius it may reach from the head's centre. The library afro (10 cm strands out
#: to 17 cm) is a big round afro; a short one sits close to the head.
_SHORT_COILY = {"short": (0.055, 0.135), "very short": (0.03, 0.12)}


def _sized_style(style, hair_length: Optional[str]):
    """``style`` resized to a stated length where the preset's size is not what it says: a short
    afro (:data:`_SHORT_COILY`); every other style is returned as it is."""
    if style.curl == "coily" and hair_length in _SHORT_COILY:
        length, radius = _SHORT_COILY[hair_length]
        return dataclasses.replace(style, length=min(style.length, length), max_radius=min(style.max_radius, radius))
    return style


def _template_hair(template, head: Mesh, style: str, attrs, *, seed: int, n_strands: int, n_points: int,
                   guides: Optional[int]):
    import jax


    rgb = np.asarray(HAIR_COLORS.get(_hair_color_name(attrs), HAIR_COLORS["brown"]), np.float32)
    chosen = _sized_style(HAIR_STYLES[style], attrs.hair_length)
    if chosen.bald:
        return np.zeros((0, n_points, 3), np.float32), tuple(float(c) for c in rgb)
    shaped = dataclasses.replace(template, mesh=head)
    sdf = head_sdf_grid(head)
    def grow(count):
        return grow_style(jax.random.key(int(seed)), chosen, shaped, n_strands=count, n_points=int(n_points),
                          color=rgb, sdf=sdf, guides=None if guides is None else min(int(guides), count))

    clean = cleanup_to_count(grow, lambda s: cleanup_strands(s, sdf=sdf, n_points=int(n_points)), int(n_strands))
    return np.asarray(clean.strands.points, np.float32), tuple(float(c) for c in rgb)


# ------------------------------------------------------------------------------------------------
def _scene_parts(parts):
    def gloss(p):  # (specular, shininess): the cornea's small wet highlight; a clear part's is added in full
        if p.name.startswith("cornea"):
            return 0.6, 120.0
        if p.name.startswith("lenses"):
            return 0.06, 64.0
        return 0.08, 32.0

    def pbr(p):  # the GLB material's roughness (map x factor) and specular maps, as a viewer reads them
        if p.roughness_map is None:
            return {}
        def unit(m):
            m = np.asarray(m)
            return m.astype(np.float32) / 255.0 if m.dtype == np.uint8 else np.asarray(m, np.float32)
        out = dict(roughness_map=np.clip(unit(p.roughness_map) * float(p.roughness), 0.0, 1.0))
        if p.specular_map is not None and np.shape(p.specular_map) == np.shape(p.roughness_map):
            out["specular_map"] = unit(p.specular_map)
        return out

    return [ScenePart(p.mesh, texture=p.texture, color=tuple(p.base_color[:3]), alpha=p.alpha,
                      specular=gloss(p)[0], shininess=gloss(p)[1], two_sided=p.double_sided, **pbr(p)) for p in parts]


def _strands_of(character: Character):
    """The character's hair and beard as :class:`~machlib.hair.Strands` for the renderers, or None."""
    return _character_strands(character)


@with_serial_blas
def preview_images(character: Character, *, expression=None, size: int = 384,
                   exposure: float = PREVIEW_EXPOSURE) -> dict:
    """The preview renders (machlib's own renderer, hair included).

    Returns a dict of images: ``front``, ``three_quarter``, ``profile``, ``back`` (RGBA),
    ``turntable`` (a strip of 8 views), ``expressions`` (the seven emotions, labelled) and
    ``relit`` (three spherical-harmonics lights side by side).

    Args:
        character: the :class:`Character`.
        expression: optional ``(52,)`` weights for the four views (default: neutral).
        size: pixel size of one view.
        exposure: the renders' exposure (:func:`machlib._scene.render_scene`) under the
            directional light of the views, the turntable and the expressions (the relit sheet's
            SH lights keep 1). The default, :data:`PREVIEW_EXPOSURE`, shows the face as bright as
            the delighting's convention makes it in the photo.
    """
    jobs, collect = _preview_jobs(character, expression=expression, size=size, exposure=exposure)
    return collect(_render_jobs(jobs))


def _render_jobs(jobs: list) -> dict:
    """Run independent ``(key, render)`` jobs on two threads (the numpy rasteriser and shader
    spend most of their time in array operations that release the GIL), in the order given:
    the largest first, so that the small ones fill both threads at the end."""
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="machlib-preview") as pool:
        return dict(zip([k for k, _ in jobs], pool.map(lambda job: job[1](), jobs)))


def _preview_jobs(character: Character, *, expression, size: int, exposure: float):
    """:func:`preview_images`' renders as ``(key, render)`` jobs, largest first, and the function
    that makes the preview images from their results."""
    strands = _strands_of(character)
    s = character.frame.scale
    target = (0.0, -0.045 * s, 0.0)
    dist = 0.95 * s
    kw = dict(target=target, distance=dist, image_size=(size, size), fov_degrees=25.0)
    posed = _scene_parts(posed_parts(character, expression))
    neutral = _scene_parts(posed_parts(character, None))
    light = (0.35, 0.45, 1.0)
    small = max(size // 2, 96)
    tkw = dict(kw, image_size=(small, small))
    basis = np.asarray(emotion_basis(), np.float64)
    face_kw = dict(target=(0.0, -0.02 * s, 0.04 * s), distance=0.6 * s, image_size=(small, small), fov_degrees=25.0)
    face_cam = orbit_camera(12.0, **face_kw)
    lights = three_sh_lights()
    jobs = [(name, lambda yaw=yaw: render_scene(posed, orbit_camera(yaw, **kw), strands=strands,
                                                 light_dir=_rot_light(light, yaw), exposure=exposure))
            for name, yaw in (("front", 0.0), ("three_quarter", 35.0), ("profile", 90.0), ("back", 180.0))]
    # the three SH lights see the same geometry: one rasterization and strand pass, an image per light
    jobs.append(("relit", lambda: render_scene(neutral, orbit_camera(20.0, **kw), strands=strands,
                                               sh=np.stack(list(lights.values())), supersample=1)))
    # the turntable's light turns with its camera, as the four views' does (and is theirs at 0, 90
    # and 180°, so the hair's shadow maps are shared): under one fixed light the back views showed
    # a grey shirt and an unlit neck beside hair lit from behind
    jobs += [(("turntable", i), lambda c=c, i=i: render_scene(neutral, c, strands=strands, background=(1.0, 1.0, 1.0),
                                                              light_dir=_rot_light(light, 45.0 * i), supersample=1,
                                                              exposure=exposure))
             for i, c in enumerate(turntable_cameras(8, **tkw))]
    jobs += [(("face", i), lambda i=i: render_scene(_scene_parts(posed_parts(character, basis[i])), face_cam,
                                                    strands=strands, light_dir=(0.3, 0.45, 1.0), supersample=1,
                                                    exposure=exposure))
             for i in range(len(EMOTIONS))]

    def collect(done: dict) -> dict:
        out = {name: done[name] for name in ("front", "three_quarter", "profile", "back")}
        out["turntable"] = np.concatenate([done["turntable", i][..., :3] for i in range(8)], 1)
        out["expressions"] = preview_sheet([done["face", i] for i in range(len(EMOTIONS))], columns=len(EMOTIONS),
                                           labels=list(EMOTIONS))
        out["relit"] = preview_sheet(list(done["relit"]), columns=3, labels=list(lights))
        return out

    return jobs, collect


def _rot_light(light, yaw_deg: float):
    a = np.radians(yaw_deg)
    x, y, z = light
    return (float(np.cos(a) * x + np.sin(a) * z), float(y), float(-np.sin(a) * x + np.cos(a) * z))


def _input_view(result: MakeOutput) -> Optional[np.ndarray]:
    """The avatar rendered in the fitted camera at the portrait's resolution (RGBA)."""
    if result.fit is None:
        return None
    ch = result.character
    strands = _strands_of(ch)
    sh = None
    if result.texture is not None:
        sh = np.asarray(result.texture.lighting, np.float64)
    return render_scene(_scene_parts(posed_parts(ch, None)), result.fit.result.camera, strands=strands, sh=sh)


@with_serial_blas
def write_make_outputs(out: Union[str, os.PathLike], result: MakeOutput, *, size: int = 384) -> dict:
    """Write everything ``machlib make`` promises into ``out`` atomically and return the report.

    Files: ``avatar.glb``, ``avatar.obj``/``.mtl`` with ``avatar_albedo.png``, ``avatar_normal.png``,
    ``avatar_roughness.png``, ``avatar_specular.png``, ``albedo.png``, ``hair.data``, ``hair.usda`` (and ``beard.data``,
    ``beard.usda`` for a character with facial hair),
    ``render_input_view.png`` (photo modes), the previews ``preview_front.png``,
    ``preview_three_quarter.png``, ``preview_profile.png``, ``preview_back.png``,
    ``turntable.png``, ``expressions.png``, ``relit.png``, ``report.json`` and ``avatar.zip``
    (all of the above).

    Args:
        out: output folder (created; replaced atomically when it exists).
        result: the :class:`MakeOutput`.
        size: preview size in pixels.

    Returns:
        The report dict (also written as ``report.json``).
    """
    ch = result.character
    timings = dict(result.timings)
    with atomic_output_dir(out) as tmp, ThreadPoolExecutor(1, thread_name_prefix="machlib-export") as side:
        tmp = Path(tmp)

        def export():
            t = time.perf_counter()
            (tmp / "avatar.glb").write_bytes(character_glb(ch))
            written = ["avatar.glb", *write_character_obj(tmp, ch)]
            head = ch.part("head")
            save_png(tmp / "albedo.png", (np.clip(head.texture, 0, 1) * 255 + 0.5).astype(np.uint8))
            written.append("albedo.png")
            written += _write_strand_files(tmp, ch)
            seconds = round(time.perf_counter() - t, 3)
            # their avatar.zip members, compressed here while the previews render (the zip is
            # the last step, when the other core would be idle)
            return written, seconds, {n: _deflate((tmp / n).read_bytes()) for n in written}

        # the files and the report's fit summary are made on a second thread beside the
        # previews' two, which render the input view (the photo's resolution, supersampled: the
        # largest render) first: both cores stay busy until the end
        exported = side.submit(export)
        human = side.submit(_human_section, result)
        t = time.perf_counter()
        jobs, collect = _preview_jobs(ch, expression=result.expression if np.any(result.expression) else None,
                                      size=size, exposure=PREVIEW_EXPOSURE)
        done = _render_jobs([("input view", lambda: _input_view(result))] + jobs)
        images = collect(done)
        files, timings["export"], deflated = exported.result()
        for name, img in images.items():
            fn = f"preview_{name}.png" if name in ("front", "three_quarter", "profile", "back") else f"{name}.png"
            save_png(tmp / fn, img)
            files.append(fn)
        if done["input view"] is not None:
            save_png(tmp / "render_input_view.png", done["input view"])
            files.append("render_input_view.png")
        timings["previews"] = round(time.perf_counter() - t, 3)
        report = _make_report(result, timings, sorted(files) + ["report.json", "avatar.zip"], human.result())
        (tmp / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        files.append("report.json")
        write_bundle(tmp / "avatar.zip", tmp, files, deflated=deflated)
    return report


def make_report(result: MakeOutput, *, timings: dict, files: list) -> dict:
    """``report.json`` of ``machlib make``: inputs, attributes, assets, metrics, timings, files."""
    return _make_report(result, timings, files, _human_section(result))


def _human_section(result: MakeOutput) -> Optional[dict]:
    """The report's ``human`` entry: the fit's two stages, or the template path's phenotype."""
    if result.fit is not None and getattr(result.fit.result, "human", None) is not None:
        return human_report(result.fit)
    return result.character.info.get("human")


def _make_report(result: MakeOutput, timings: dict, files: list, human: Optional[dict]) -> dict:
    ch = result.character
    report = {
        "machlib": __version__,
        "mode": result.mode,
        "notices": list(result.notices),
        "attributes": result.attributes,
        **({"attribute_sources": result.reading["sources"], "attribute_evidence": result.reading["evidence"]}
           if result.reading is not None else {}),
        "assets": result.assets,
        "iris_color": ch.info.get("iris_color"),
        "expression": {n: round(float(w), 4) for n, w in zip(ARKIT_BLENDSHAPES, result.expression) if w > 0},
        "parts": {p.name: {"vertices": int(p.mesh.num_vertices), "faces": int(p.mesh.num_faces),
                           "blendshapes": p.morphs is not None} for p in ch.parts},
        "joints": [j.name for j in ch.joints],
        "hair": {"strands": int(0 if ch.hair is None else len(ch.hair)),
                 "points_per_strand": int(0 if ch.hair is None or not len(ch.hair) else ch.hair.shape[1]),
                 "color_linear_rgb": [round(c, 4) for c in ch.hair_color]},
        "beard": {"style": result.assets.get("beard", {}).get("style"),
                  "strands": int(0 if ch.beard is None else len(ch.beard))},
        "timings": timings,
        "total_seconds": round(float(timings.get("make", 0.0) + timings.get("export", 0.0)
                                     + timings.get("previews", 0.0)), 3),
        "files": files,
    }
    if result.fit is not None:
        res = np.linalg.norm(np.asarray(result.fit.result.residuals, np.float64), axis=1)
        res = res[np.isfinite(res)]
        report["landmark_residual_px"] = {"mean": round(float(res.mean()), 3), "median": round(float(np.median(res)), 3),
                                          "max": round(float(res.max()), 3)}
    if result.texture is not None:
        report["face_metrics"] = {k: (round(float(v), 4) if isinstance(v, (int, float, np.floating)) else v)
                                  for k, v in result.texture.metrics.items()}
    if "body" in ch.info:
        report["body"] = ch.info["body"]
    if human is not None:
        report["human"] = human
    return report
