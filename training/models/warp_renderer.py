"""The landmark-driven warp renderer, as a torch module exported to ``render.onnx``.

It has no learned weights: every number in it is geometry. Per frame it

1. undoes a 2.5D head rotation on a coarse ``grid`` x ``grid`` lattice (yaw/pitch parallax from a
   paraboloid depth of the face, roll about the chin; the body never moves) -- the pose model of the
   procedural ``runtime.avatar.AvatarRenderer``, as a closed-form backward field;
2. adds the expression warp there: a normalised Gaussian-RBF interpolation of the landmark
   displacements (neutral - driving), centred on the driving landmarks (a backward field);
3. upsamples the source-point field (align-corners ``Resize``) to the output size and samples the
   avatar's neutral premultiplied RGBA image bilinearly: one row ``Gather`` of the 2x2-packed base
   (``quad_table``), coordinates clamped to the border so there are no holes at the frame edge
   (``grid_sample(padding_mode="border")`` semantics, several times faster than onnxruntime's CPU
   GridSample);
4. composites, inside two crops that follow the posed face (one over the mouth, one over both eyes),
   a mouth-interior layer (dark mouth, upper teeth band, tongue, outline) in a lens fitted to the
   mouth corners and inner-lip landmarks 60-67, revealed as the lips open past their neutral gap, and
   upper eyelids (skin down to a lash line) that close over the eye ellipses with ``blink``.

Neutral landmarks, zero pose and no blink give the identity warp: the base image comes back exactly.
Coordinates are canvas units (0..1, x right, y down) as in the landmark contract; images are uint8,
channel-last ``[.., S, S, 4]`` like the runtime's frames, on square canvases. Design and figures:
docs/renderer.md.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: rows of the ``colours`` input ([1, 6, 3], RGB 0..1)
COLOURS = ("lid", "lash", "mouth_in", "teeth", "tongue", "mouth_line")
#: columns of the ``eyes`` input ([1, 2, 4], image-left eye first): the ellipse's centre along the eye
#: axis (image right) and down from the corners' midpoint, and its semi-axes, in corner-distance units
EYE_PARAMS = ("cu", "cv", "au", "av")
GRID = 64  # coarse lattice of the warp field (4 px cells at 256, 8 px at 512)
KAPPA = 0.15  # RBF normaliser floor: the expression warp fades out away from the landmarks
MOUTH_CROP = (0.34, 0.34)  # (w, h) canvas units of the region the mouth layer is computed in
EYES_CROP = (0.52, 0.34)  # both eyes, one region (eye ellipses must stay inside: runtime clamps them)
OPEN_FROM = 0.011  # inner-lip gap (canvas units, past neutral) where the mouth interior starts to show


#: Gaussian RBF width per landmark group (canvas units): wider on the jaw, tight around eyes and lips. With
#: ``KAPPA``, tuned on the demo avatar's speech motion for PSNR against the procedural renderer (which redraws
#: every part exactly): narrow kernels keep the hair fringe and the collar from following the brows and the jaw
#: (docs/renderer.md).
SIGMAS = {"jaw 0-16": 0.035, "brows 17-26": 0.025, "nose 27-35": 0.025, "eyes 36-47": 0.018, "lips 48-67": 0.014}


def default_sigmas() -> torch.Tensor:
    """``SIGMAS`` per landmark, [68]."""
    s = torch.empty(68)
    for group, v in SIGMAS.items():
        lo, hi = (int(i) for i in group.split()[1].split("-"))
        s[lo : hi + 1] = v
    return s


def _aa(dist_px: torch.Tensor) -> torch.Tensor:
    """Anti-aliased coverage from a signed distance in pixels (> 0 inside)."""
    return torch.clamp(dist_px + 0.5, 0.0, 1.0)


def quad_table(img: torch.Tensor) -> torch.Tensor:
    """[..., H, W, C] -> [..., H, W, 4 * C]: every pixel with its 2x2 neighbourhood (x, y), (x+1, y),
    (x, y+1), (x+1, y+1), edge-replicated, so one row ``Gather`` fetches all four bilinear taps.
    (``runtime.warp_renderer.pack_quads`` is the same for the per-avatar ``base`` input.)"""
    pad = torch.cat([img, img[..., -1:, :, :]], -3)
    pad = torch.cat([pad, pad[..., -1:, :]], -2)
    return torch.cat([pad[..., :-1, :-1, :], pad[..., :-1, 1:, :], pad[..., 1:, :-1, :], pad[..., 1:, 1:, :]], -1)


def _planar(rows: torch.Tensor) -> torch.Tensor:
    """[N, K] -> [K, N], kept channel-first in the exported graph: the identity ``Gather`` stops
    onnxruntime's transpose optimizer from moving the Transpose to the end, which would turn every
    blend below into a [N, 1] x [N, C] broadcast (~5x slower on its CPU kernels than [1, N] x [C, N])."""
    t = rows.t()
    return torch.index_select(t, 0, torch.arange(t.shape[0]))


def bilinear(
    quad: torch.Tensor, size: int, x: torch.Tensor, y: torch.Tensor, offset: torch.Tensor | None = None
) -> torch.Tensor:
    """Bilinear lookup in ``quad_table`` rows ``quad`` [R, 4 * C] (square images of ``size`` pixels, row =
    offset + y * size + x) at pixel coordinates ``x``, ``y`` (pixel i's centre at i; any shape, N values),
    clamped to the border like ``grid_sample(padding_mode="border")``. Returns channel-first float [C, N]."""
    size = torch.as_tensor(size, dtype=x.dtype)
    x = torch.minimum(torch.clamp(x.reshape(1, -1), min=0.0), size - 1.0)
    y = torch.minimum(torch.clamp(y.reshape(1, -1), min=0.0), size - 1.0)
    x0, y0 = torch.floor(x), torch.floor(y)
    fx, fy = x - x0, y - y0
    i = y0 * size + x0
    if offset is not None:
        i = i + offset.reshape(1, -1)
    a, b, c, d = torch.chunk(_planar(quad[i.reshape(-1).long()]).float(), 4, 0)  # taps, each [C, N]
    top = a + fx * (b - a)
    return top + fy * (c + fx * (d - c) - top)


class WarpRenderer(nn.Module):
    """``forward(base, neutral, landmarks, pose, blink, eyes, colours) -> rgba``; see the module docstring.

    base uint8 [1, S, S, 16]: the avatar at its neutral landmarks, premultiplied RGBA, each pixel packed with
    its 2x2 neighbourhood (``quad_table``); neutral [1, 68, 2]; landmarks [B, 68, 2] (driving, un-posed);
    pose [B, 3] yaw, pitch, roll (rad); blink [B, 1] 0 open .. 1 closed; eyes [1, 2, 4] (``EYE_PARAMS``);
    colours [1, 6, 3] RGB 0..1 (``COLOURS``). Output uint8 [B, S, S, 4], premultiplied RGBA.
    """

    def __init__(self, grid: int = GRID, kappa: float = KAPPA, sigmas: torch.Tensor | None = None):
        super().__init__()
        self.grid, self.kappa = int(grid), float(kappa)
        self.register_buffer("steps", torch.arange(self.grid, dtype=torch.float32) / (self.grid - 1), persistent=False)
        s = default_sigmas() if sigmas is None else torch.as_tensor(sigmas, dtype=torch.float32)
        self.register_buffer("inv_2s2", (0.5 / s**2).reshape(1, 1, 68), persistent=False)

    # ------------------------------------------------------------------------------------ geometry
    @staticmethod
    def head_geometry(n: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-avatar constants from the neutral landmarks [1, 68, 2]; each [1, 1]."""
        x, y = n[..., 0], n[..., 1]
        cx = 0.25 * (x[:, 0:1] + x[:, 16:17]) + 0.5 * x[:, 27:31].mean(1, keepdim=True)
        brow = y[:, 17:27].min(1, keepdim=True).values
        chin = y[:, 8:9]
        fcy, fry = 0.5 * (brow + chin), 0.6 * (chin - brow)
        return {
            "cx": cx,
            "eye_y": y[:, 36:48].mean(1, keepdim=True),
            "fcy": fcy,
            "fry": fry,
            "rx": 0.5 * (x[:, 16:17] - x[:, 0:1]),
            "piv_y": chin - 0.02,
            "hcy": fcy - 0.25 * fry,
            "hrx": 0.775 * (x[:, 16:17] - x[:, 0:1]),
            "hry": 1.5 * fry,
        }

    @staticmethod
    def _above_neck(y, g):
        """1 down to just below the chin pivot, 0 from the neck down (the body never moves)."""
        return torch.clamp((g["piv_y"] + 0.1 - y) / 0.08, 0.0, 1.0)

    def _fields(self, qx, qy, g) -> tuple[torch.Tensor, torch.Tensor]:
        """Head mask m (1 on the head, 0 on body/background) and face depth w (1 at the face centre)."""
        hx, hy = (qx - g["cx"]) / g["hrx"], (qy - g["hcy"]) / g["hry"]
        m = torch.clamp((1.25 - torch.sqrt(hx * hx + hy * hy)) / 0.45, 0.0, 1.0) * self._above_neck(qy, g)
        fx, fy = (qx - g["cx"]) / g["rx"], (qy - g["fcy"]) / g["fry"]
        return m, torch.clamp(1.0 - fx * fx - fy * fy, 0.0, 1.0)

    @staticmethod
    def _pose_terms(pose):
        sy, sp = torch.sin(pose[:, 0:1]), torch.sin(pose[:, 1:2])
        return sy, sp, torch.abs(sy), torch.abs(sp), pose[:, 2:3]

    def pose_points(self, qx, qy, pose, g) -> tuple[torch.Tensor, torch.Tensor]:
        """Where un-posed points [B, N] land (as ``AvatarRenderer._pose_fn``, with the face depth as the feature
        weight and the head mask scaling everything) -- the approximate inverse of ``unpose``, used to place
        the layer crops (to within a pixel or two; they have margin)."""
        sy, sp, ay, ap, roll = self._pose_terms(pose)
        m, w = self._fields(qx, qy, g)
        yx = g["cx"] + (qx - g["cx"]) * (1.0 - (0.07 + 0.08 * w) * ay * m) + (0.03 + 0.07 * w) * sy * m
        yy = g["eye_y"] + (qy - g["eye_y"]) * (1.0 - 0.06 * w * ap * m) + (0.01 + 0.05 * w) * sp * m
        a = roll * self._roll_weight(yx, yy, g)
        c, s = torch.cos(a), torch.sin(a)
        dx, dy = yx - g["cx"], yy - g["piv_y"]
        return g["cx"] + c * dx - s * dy, g["piv_y"] + s * dx + c * dy

    @staticmethod
    def _roll_weight(x, y, g):
        """How much of the roll a point takes: all of it above the pivot (the head, whatever its pose),
        none from the neck down (the body stays), fading with the distance far outside the head. A
        function of the output position, so the roll stays a smooth backward field for any angle."""
        dx, dy = x - g["cx"], y - g["piv_y"]
        return WarpRenderer._above_neck(y, g) * torch.clamp((1.1 - torch.sqrt(dx * dx + dy * dy)) / 0.3, 0.0, 1.0)

    def unpose(self, px, py, pose, g) -> tuple[torch.Tensor, torch.Tensor]:
        """The backward head-pose field at output points [B, N] -> un-posed points. Closed form (the roll
        weight from the output position, the yaw/pitch parallax from the un-rolled one): smooth and
        defined for any pose -- no iterative inversion that a large roll could break."""
        sy, sp, ay, ap, roll = self._pose_terms(pose)
        a = roll * self._roll_weight(px, py, g)
        c, s = torch.cos(a), torch.sin(a)
        dx, dy = px - g["cx"], py - g["piv_y"]
        yx, yy = g["cx"] + c * dx + s * dy, g["piv_y"] - s * dx + c * dy
        m, w = self._fields(yx, yy, g)
        qx = g["cx"] + (yx - g["cx"] - (0.03 + 0.07 * w) * sy * m) / (1.0 - (0.07 + 0.08 * w) * ay * m)
        qy = g["eye_y"] + (yy - g["eye_y"] - (0.01 + 0.05 * w) * sp * m) / (1.0 - 0.06 * w * ap * m)
        return qx, qy

    def expression(self, q: torch.Tensor, drive: torch.Tensor, neutral: torch.Tensor) -> torch.Tensor:
        """Backward expression displacement at points q [B, N, 2]: normalised Gaussian RBF of
        (neutral - driving), centred on the driving landmarks. Two GEMMs: -|q - l|^2 / 2s^2 as
        (qx, qy, |q|^2, 1) . (lx, ly, -1/2, -|l|^2/2) / s^2, then the weighted sums of (d, 1)."""
        one = torch.ones_like(q[..., :1])
        qa = torch.cat([q, (q * q).sum(-1, keepdim=True), one], -1)  # [B, N, 4]
        la = torch.cat(
            [drive, -0.5 * torch.ones_like(drive[..., :1]), -0.5 * (drive * drive).sum(-1, keepdim=True)], -1
        )
        k = torch.exp(torch.bmm(qa, (la * self.inv_2s2.transpose(1, 2) * 2.0).transpose(1, 2)))  # [B, N, 68]
        nd = torch.bmm(k, torch.cat([neutral - drive, torch.ones_like(drive[..., :1])], -1))  # [B, N, 3]
        return nd[..., :2] / (nd[..., 2:] + self.kappa)

    # ------------------------------------------------------------------------------------ crops
    @staticmethod
    def crop(centre_x, centre_y, size, frac):
        """Integer pixel region of ``frac`` (w, h) canvas units around output points [B, 1] (clamped into
        the frame): flat pixel rows [B, h, w] (batch offset included) and their pixel x, y [B, h, w]."""
        cw, ch = (size * int(frac[0] * 1024)) // 1024, (size * int(frac[1] * 1024)) // 1024
        ox = torch.minimum(torch.clamp(torch.round(centre_x * size - cw / 2), min=0.0), size - cw + 0.0 * centre_x)
        oy = torch.minimum(torch.clamp(torch.round(centre_y * size - ch / 2), min=0.0), size - ch + 0.0 * centre_y)
        px = ox[..., None] + torch.arange(cw, dtype=torch.float32)[None, None, :]  # [B, 1, w]
        py = oy[..., None] + torch.arange(ch, dtype=torch.float32)[None, :, None]  # [B, h, 1]
        batch = torch.cumsum(torch.ones_like(centre_x, dtype=torch.long), 0) - 1  # [B, 1]
        rows = batch[..., None] * (size * size) + (py * size + px).long()  # [B, h, w]
        return rows, px + 0.0 * py, py + 0.0 * px

    def _unposed_at(self, q_quad, px, py, size):
        """Un-posed canvas coordinates at output pixels [B, h, w], bilinear from the lattice field (what the
        full-size ``Resize`` of the field gives there)."""
        g = self.grid
        k = (g - 1.0) / (size - 1.0)  # lattice units per pixel (lattice i sits on pixel i / k)
        batch = torch.cumsum(torch.ones_like(px, dtype=torch.long), 0) - 1
        q = bilinear(q_quad, g, px * k, py * k, batch * (g * g))  # [2, K]
        return q[0].reshape(px.shape), q[1].reshape(px.shape)

    @staticmethod
    def _paint(img: torch.Tensor, rows: torch.Tensor, layer) -> torch.Tensor:
        """Run ``layer(pixels [4, K] float 0..255) -> pixels`` on the image rows ``rows`` and write them back."""
        idx = rows.reshape(-1)
        pix = layer(_planar(img[idx]).float())
        return img.index_put((idx,), _planar(_to_u8(pix)))

    # ------------------------------------------------------------------------------------ layers
    @staticmethod
    def mouth_layer(ux, uy, lm, neutral, col, px):
        """Mouth interior (dark mouth, teeth band, tongue, outline) at crop points [B, h, w]: returns
        ``paint(pixels [4, K]) -> pixels``. The shape is a lens around the parabola through the mouth
        corners (60, 64) and the middle of the inner-lip gap, as thick as the gap, so smiling and frowning
        mouths keep their curve; it fades in as the gap opens past ``OPEN_FROM`` beyond the neutral gap
        (below that the base's own closed-mouth line, stretched by the warp, is the mouth)."""

        def gap(p):
            return (p[:, [67, 66, 65]] - p[:, [61, 62, 63]]).norm(dim=-1).mean(1, keepdim=True)

        g_now = gap(lm)
        opening = torch.clamp(g_now - gap(neutral), min=0.0)  # [B, 1] past the neutral gap
        a, b = lm[:, 60], lm[:, 64]
        e = (b - a) / ((b - a).norm(dim=-1, keepdim=True) + 1e-6)  # mouth axis, image right
        n = torch.stack([-e[:, 1], e[:, 0]], -1)  # down
        mid = 0.5 * (a + b)
        centre = ((lm[:, 61] + 2.0 * lm[:, 62] + lm[:, 63]) + (lm[:, 67] + 2.0 * lm[:, 66] + lm[:, 65])) / 8.0
        bend = ((centre - mid) * n).sum(-1, keepdim=True)  # how far the gap's middle sits below the corners
        h = 0.55 * torch.clamp(g_now, min=1e-4)  # half-thickness in the middle: half the gap (+10 %)
        hw = 0.5 * (b - a).norm(dim=-1, keepdim=True) * (1.0 - 0.3 * torch.clamp(opening / 0.07, max=1.0))

        def bc(t):  # [B, 1] -> [B, 1, 1] over the crop
            return t[:, :, None]

        def flat(t):  # [B, h, w] -> [1, K]
            return t.reshape(1, -1)

        gate = bc(torch.clamp((opening - OPEN_FROM) / 0.004, 0.0, 1.0))
        dx, dy = ux - bc(mid[:, 0:1]), uy - bc(mid[:, 1:2])
        uu = (dx * bc(e[:, 0:1]) + dy * bc(e[:, 1:2])) * bc(1.0 / hw)  # -1 .. 1 corner to corner
        v = dx * bc(n[:, 0:1]) + dy * bc(n[:, 1:2]) - bc(bend) * (1.0 - uu * uu)  # down from the mid-line
        vv = v * bc(1.0 / h)
        dist = (1.0 - torch.sqrt(uu * uu + vv * vv)) * bc(torch.minimum(hw, h) * px)  # ~ px to the outline
        inside = flat(_aa(dist) * gate)
        teeth = flat(_aa((bc(torch.clamp(0.22 * opening + 0.004, max=0.022) - h) - v) * px))
        tu, tv = uu * (1.0 / 0.62), (v - bc(h + 0.2 * opening)) * bc(1.0 / (0.55 * opening + 1e-4))
        tongue = flat(_aa((1.0 - torch.sqrt(tu * tu + tv * tv)) * bc(0.55 * opening * px)))
        line = flat(_aa(0.004 * px - torch.abs(dist)) * gate)

        def paint(pix):
            layer = col[2] + tongue * (col[4] - col[2])
            layer = layer + teeth * (col[3] - layer)
            pix = pix + inside * (layer - pix)
            return pix + line * (col[5] - pix)

        return paint

    @staticmethod
    def eyelid_layer(ux, uy, lm, eyes, blink, col, px):
        """Upper lids over both eye ellipses at crop points [B, h, w]: skin down to a lash line as
        ``blink`` -> 1. Returns ``paint(pixels [4, K]) -> pixels``."""
        fx = lm[:, 42:48].mean(1) - lm[:, 36:42].mean(1)
        fx = fx / (fx.norm(dim=-1, keepdim=True) + 1e-6)  # [B, 2] image right along the eyes
        fy = torch.stack([-fx[:, 1], fx[:, 0]], -1)  # down
        corners = torch.stack([0.5 * (lm[:, 36] + lm[:, 39]), 0.5 * (lm[:, 42] + lm[:, 45])], 1)  # [B, 2, 2]
        width = torch.stack([(lm[:, 39] - lm[:, 36]).norm(dim=-1), (lm[:, 45] - lm[:, 42]).norm(dim=-1)], 1)
        cu, cv, au, av = (eyes[..., i] * width for i in range(4))  # [B, 2]
        ctr = corners + cu[..., None] * fx[:, None] + cv[..., None] * fy[:, None]

        def bc(t):  # [B, 2] -> [B, 2, 1, 1] over the crop
            return t[:, :, None, None]

        dx, dy = ux[:, None] - bc(ctr[..., 0]), uy[:, None] - bc(ctr[..., 1])  # [B, 2, h, w]
        uh = (dx * bc(fx[:, 0:1]) + dy * bc(fx[:, 1:2])) * bc(1.0 / au)
        vh = (dx * bc(fy[:, 0:1]) + dy * bc(fy[:, 1:2])) * bc(1.0 / av)
        inside = _aa((1.0 - torch.sqrt(uh * uh + vh * vh)) * bc(torch.minimum(au, av) * px))
        t = bc(torch.clamp(blink, 0.0, 1.0))  # [B, 1, 1, 1]
        bow = torch.clamp(1.0 - uh * uh, min=0.0)
        # the lash line runs from the eye's top arc (open) down to where it rests when shut (just above the
        # corner line at the ends, bowed down in the middle); the lid covers everything above it, and the
        # rest of the eye too over the last quarter of the blink
        closed = bc((-cv - 0.1 * width) / av) + bc(0.1 * width / av) * bow
        lash_v = (1.0 - t) * (-0.92 * torch.sqrt(bow)) + t * closed
        cover = lash_v + 2.5 * torch.clamp((t - 0.75) * 4.0, 0.0, 1.0)
        gate = torch.clamp(t * 40.0, 0.0, 1.0)
        lid = inside * _aa((cover - vh) * bc(av * px)) * gate
        lash_w = bc(0.07 * width) * torch.sqrt(torch.sqrt(bow)) * torch.clamp(t * 3.0, max=1.0)
        lash = (
            _aa((0.5 * lash_w - torch.abs(vh - lash_v) * bc(av)) * px) * _aa((1.0 - torch.abs(uh)) * bc(au * px)) * gate
        )
        lid = (1.0 - (1.0 - lid[:, 0]) * (1.0 - lid[:, 1])).reshape(1, -1)  # union of both eyes [1, K]
        lash = torch.maximum(lash[:, 0], lash[:, 1]).reshape(1, -1)

        def paint(pix):
            pix = pix + lid * (col[0] - pix)
            return pix + lash * (col[1] - pix)

        return paint

    # ------------------------------------------------------------------------------------ forward
    def forward(self, base, neutral, landmarks, pose, blink, eyes, colours):
        bsz, size = landmarks.shape[0], base.shape[2]
        sizef = torch.ones_like(neutral[0, 0, 0:1]) * size  # [1] float pixels per canvas unit
        g = self.head_geometry(neutral)
        # coarse fields on the lattice: un-posed point q, source point src = q + expression warp
        # the lattice: G x G points on pixel centres i * (S - 1) / (G - 1), so an align-corners Resize of
        # a field sampled there reproduces it exactly (identity in, identity out)
        t = (self.steps * (sizef - 1.0) + 0.5) / sizef  # canvas units
        p = torch.stack([t.expand(self.grid, -1), t[:, None].expand(-1, self.grid)], -1).reshape(1, -1, 2)
        p = p.expand(bsz, -1, -1)
        qx, qy = self.unpose(p[..., 0], p[..., 1], pose, g)
        q = torch.stack([qx, qy], -1)
        src = q + self.expression(q, landmarks, neutral)
        # source pixel at every output pixel: align-corners Resize of the lattice field
        xy = (src * sizef - 0.5).reshape(bsz, self.grid, self.grid, 2).permute(0, 3, 1, 2)
        xy = F.interpolate(xy, size=base.shape[1:3], mode="bilinear", align_corners=True)  # [B, 2, S, S]
        img = _planar(_to_u8(bilinear(base.reshape(-1, 16), sizef, xy[:, 0], xy[:, 1])))  # [B*S*S, 4] uint8
        col = (torch.cat([colours, torch.ones_like(colours[..., :1])], -1)[0] * 255.0)[..., None]  # [6, 4, 1]
        q_quad = quad_table(q.reshape(bsz, self.grid, self.grid, 2)).reshape(-1, 8)
        # mouth layer, in a crop around the posed mouth centre
        mc = landmarks[:, 60:68].mean(1)
        rows, px_, py_ = self.crop(*self.pose_points(mc[:, 0:1], mc[:, 1:2], pose, g), size, MOUTH_CROP)
        ux, uy = self._unposed_at(q_quad, px_, py_, size)
        img = self._paint(img, rows, self.mouth_layer(ux, uy, landmarks, neutral, col, sizef))
        # eyelids, in one crop around the posed eyes
        ec = landmarks[:, 36:48].mean(1)
        rows, px_, py_ = self.crop(*self.pose_points(ec[:, 0:1], ec[:, 1:2], pose, g), size, EYES_CROP)
        ux, uy = self._unposed_at(q_quad, px_, py_, size)
        img = self._paint(img, rows, self.eyelid_layer(ux, uy, landmarks, eyes, blink, col, sizef))
        return img.reshape(bsz, size, size, 4)


def _to_u8(x: torch.Tensor) -> torch.Tensor:
    """float 0..255 -> uint8, rounded (Cast truncates: + 0.5 first)."""
    return torch.clamp(x + 0.5, 0.0, 255.0).to(torch.uint8)
