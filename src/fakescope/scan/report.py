"""One self-contained HTML file per scan, for an analyst to attach to a ticket.

`write_html(report, path)` takes a scan's JSON (`ScanReport.to_dict()`, what `--json` writes)
and shows, per file: the verdict and P(fake) against the threshold, one row per person (face
track) with a thumbnail, a timeline of P(fake) per track over the video (inline SVG), the key
frame (the most suspicious face's frame) with every face's box, track and P(fake) drawn on it,
and the scored faces with their heatmaps where the scan wrote them; then the model, its
calibration and provenance. Images are embedded as base64, so the file opens anywhere, offline.
Thumbnails and key frames are cut from the media again (the same frames the scan sampled); a
file that has moved since is reported without them.
"""
from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any, Callable, Optional

import cv2
import numpy as np

THUMB = 96  # px, face thumbnails
KEY_FRAME_WIDTH = 960  # px at most
MAX_FACES_SHOWN = 48  # per file: the most suspicious first

def report_css() -> str:
    """The report's style sheet (report.css, beside this file); the web page serves the same one."""
    from importlib import resources

    return resources.files("fakescope.scan").joinpath("report.css").read_text(encoding="utf-8")



#: where a file's pictures come from: (its position in the report, its result) -> {picture name: img src}
Sources = Callable[[int, dict], dict[str, str]]


def write_html(report: dict[str, Any], path: str | Path) -> Path:
    """Write the report of `report` (a scan's JSON) to `path`; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report), encoding="utf-8")
    return path


def embedded_sources(settings: dict) -> Sources:
    """Pictures cut from the media again and embedded as data URIs (the self-contained report)."""
    threshold, _ = _threshold(settings)

    def sources(_number: int, result: dict) -> dict[str, str]:
        frames = _frames_of(result, settings) if result.get("status") == "ok" else None
        if frames is None:
            return {}
        return {name: data_uri(image, name) for name, image in evidence_images(result, frames, threshold).items()}

    return sources


def _threshold(settings: dict) -> tuple[float, float]:
    return float(settings.get("threshold", 0.5)), float(settings.get("uncertain_band", 0.0) or 0.0)


def render_html(report: dict[str, Any], sources: Optional[Sources] = None) -> str:
    """The whole report page; `sources` gives each file's pictures (default: embedded)."""
    settings = report.get("settings", {})
    threshold, band = _threshold(settings)
    sources = sources or embedded_sources(settings)
    model = report.get("model", {})
    results = report.get("results", [])
    counts: dict[str, int] = {}
    for r in results:
        counts[r.get("verdict") or r.get("status")] = counts.get(r.get("verdict") or r.get("status"), 0) + 1
    rule = f"FAKE from P(fake) {threshold:.3f}" + (f", UNCERTAIN from {threshold - band:.3f}" if band else "") + ", REAL below"
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        "<meta name=viewport content='width=device-width,initial-scale=1'>",
        f"<title>fakescope report: {len(results)} file(s)</title><style>{report_css()}</style></head><body>",
        f"<h1>fakescope report: {len(results)} file(s)</h1>",
        f"<p>{_e(', '.join(f'{n} {k}' for k, n in sorted(counts.items())))}. Verdicts: {_e(rule)}. "
        f"Model <code>{_e(model.get('name'))}</code> ({_e(model.get('arch'))}, {_e(model.get('backend', ''))} "
        f"on {_e(model.get('device', ''))}); fakescope {_e(report.get('fakescope_version', ''))}.</p>",
        _summary_table(results),
    ]
    for number, result in enumerate(results):
        parts.append(render_file(number, result, settings, sources(number, result)))
    parts.append(render_model(model, settings))
    parts.append("</body></html>")
    return "\n".join(parts)


def render_model(model: dict, settings: dict) -> str:
    """The model, its preprocessing, provenance and the scan settings."""
    parts = ["<h2>Model</h2>"]
    parts.append(f"<p>{_e(model.get('name'))}: architecture {_e(model.get('arch'))}, preprocessing "
                 f"<code>{_e(json.dumps(model.get('preprocess', {})))}</code>.</p>")
    parts.append(f"<details><summary>provenance (what it was trained and calibrated on)</summary><pre>"
                 f"{_e(json.dumps(_trim(model.get('provenance', {})), indent=2))}</pre></details>")
    parts.append(f"<details><summary>scan settings</summary><pre>{_e(json.dumps(settings, indent=2))}</pre></details>")
    return "".join(parts)


# ----------------------------------------------------------------------------- sections


def _summary_table(results: list[dict]) -> str:
    rows = ["<table><tr><th>file</th><th>verdict</th><th>P(fake)</th><th>faces</th><th>tracks</th><th>message</th></tr>"]
    for number, r in enumerate(results):
        score = "" if r.get("score") is None else f"{r['score']:.3f}"
        rows.append(f"<tr><td><a href='#file{number}'>{_e(r['path'])}</a></td><td>{_badge(r)}</td><td>{score}</td>"
                    f"<td>{r.get('faces_found', 0)}</td><td>{len(r.get('tracks', []))}</td>"
                    f"<td class=muted>{_e(r.get('message') or '')}</td></tr>")
    rows.append("</table>")
    return "".join(rows)


def render_file(number: int, r: dict, settings: dict, src: dict[str, str]) -> str:
    """One file's section: verdict, people, timeline, key frames and faces. `src` maps the picture
    names of `evidence_images` to img sources (data URIs in the report, URLs on the web page)."""
    threshold, band = _threshold(settings)
    out = [f"<h2 id='file{number}'>{_e(r['path'])}</h2>"]
    if r.get("status") != "ok":
        out.append(f"<p>{_badge(r)} {_e(r.get('message') or '')}</p>")
        return "".join(out)
    if r.get("score") is not None:
        source = " (from the whole picture)" if r.get("score_source") == "whole_image" else ""
        out.append(f"<p>{_badge(r)} P(fake) = <b>{r['score']:.3f}</b>{source} ({r['from_threshold']:+.3f} from the "
                   f"threshold {threshold:.3f}); {_scope(r)}; {r.get('seconds', 0):.2f} s.</p>")
    else:
        out.append(f"<p>{_badge(r)} {_scope(r)}; {r.get('seconds', 0):.2f} s.</p>")
    for warning in r.get("warnings", []):
        out.append(f"<p class=muted>warning: {_e(warning)}</p>")
    if not src:
        out.append("<p class=muted>The media file is not where the scan read it, so no thumbnails or key frame.</p>")
    out.append(_whole_image_section(r, src))
    out.append(_tamper_section(r, src))
    faces = r.get("faces", [])
    if not faces:
        return "".join(out)
    out.append("<table class=people><tr><th>person</th><th>face</th><th>P(fake)</th><th>vs threshold</th><th>verdict</th>"
               f"<th>faces</th>{'' if r.get('kind') == 'image' else '<th>frames</th><th>voted</th>'}</tr>")
    for track in r.get("tracks", []):
        members = [i for i, f in enumerate(faces) if f["track"] == track["track"]]
        best = max(members, key=lambda i: faces[i]["score"]) if members else None
        thumb = _img(src.get(face_picture(best)), THUMB) if best is not None else ""
        video_columns = "" if r.get("kind") == "image" else (
            f"<td>{track['first_frame']}-{track['last_frame']}</td>"
            f"<td>{'yes' if track['used_for_verdict'] else 'no (seen in few frames)'}</td>")
        out.append(f"<tr><td>{track['track']}</td><td>{thumb}</td><td>{track['score']:.3f}</td>"
                   f"<td>{track.get('from_threshold', 0):+.3f}</td><td>{_badge(track)}</td><td>{track['faces']}</td>"
                   f"{video_columns}</tr>")
    out.append("</table>")
    if r.get("kind") == "video" and faces:
        out.append(_timeline(r, threshold, band))
    if KEY_FRAME in src:
        key = key_frame_index(r)
        what = "the image" if r.get("kind") == "image" else f"frame {key}, the most suspicious face's"
        out.append(f"<p>Key frame ({_e(what)}): each face's box, person and P(fake)"
                   f"{'; beside it, the forgery map placed back on the frame' if KEY_FRAME_MAP in src else ''}.</p>")
        out.append(f"<div class=keyframes>{_img(src[KEY_FRAME], None, css='key')}"
                   f"{_img(src.get(KEY_FRAME_MAP), None, css='key')}</div>")
    shown = sorted(range(len(faces)), key=lambda i: -faces[i]["score"])[:MAX_FACES_SHOWN]
    if shown and any(face_picture(i) in src for i in shown):
        with_maps = any(heatmap_picture(i) in src for i in shown)
        out.append(f"<p>Scored faces, most suspicious first ({len(shown)} of {len(faces)})"
                   f"{'; each with its forgery map, colour scale and score' if with_maps else ''}:</p>")
        out.append("<div class=faces>")
        for i in shown:
            face = faces[i]
            where = "" if r.get("kind") == "image" else f"frame {face['frame_index']}, "
            out.append(f"<div class=face>{_img(src.get(face_picture(i)), THUMB)}{_img(src.get(heatmap_picture(i)), THUMB)}"
                       f"{where}person {face['track']}<br>P(fake) {face['score']:.3f}</div>")
        out.append("</div>")
    return "".join(out)


def _whole_image_section(r: dict, src: dict[str, str]) -> str:
    whole = r.get("whole_image")
    if not whole:
        return ""
    out = [f"<h3>The whole picture</h3><p>{_badge(whole)} P(generated) = <b>{whole['score']:.3f}</b> "
           f"({whole['from_threshold']:+.3f} from the threshold {whole['threshold']:.3f}) by "
           f"<code>{_e(whole['model'])}</code>, the mean over {whole['views']} view(s) cut at the picture's own "
           "resolution.</p>"]
    if whole.get("attribution"):
        rows = "".join(f"<tr><td>{_e(name)}</td><td>{p:.3f}</td></tr>"
                       for name, p in sorted(whole["attribution"].items(), key=lambda item: -item[1]))
        out.append(f"<p>Generator attribution: most likely <b>{_e(whole['generator'])}</b>.</p>"
                   f"<table><tr><th>generator family</th><th>probability</th></tr>{rows}</table>")
    if IMAGE_MAP in src:
        out.append("<p>Where the model sees generation (its patch map over the picture):</p>"
                   + _img(src[IMAGE_MAP], None, css="key"))
    return "".join(out)


def _tamper_section(r: dict, src: dict[str, str]) -> str:
    tamper = r.get("tamper")
    if not tamper:
        return ""
    verdict = (f"<span class='v fake'>TAMPERED</span> found by {_e(', '.join(tamper['methods_found']))}"
               if tamper["found"] else "<span class='v real'>NO TAMPERING FOUND</span>")
    rows = "".join(
        f"<tr><td>{_e(f['method'])}</td><td>{_e(f['kind'])}</td><td>{'yes' if f['found'] else 'no'}</td>"
        f"<td>{f['score']:.2f}</td><td>{_e(f['message'])}</td></tr>" for f in tamper["findings"])
    out = [f"<h3>Tampering</h3><p>{verdict}. Each method's evidence is its own score in [0, 1], not a calibrated "
           "probability.</p><table><tr><th>method</th><th>looks for</th><th>found</th><th>evidence</th>"
           f"<th>what it saw</th></tr>{rows}</table>"]
    pictures = [(f["method"], src[tamper_picture(f["method"])]) for f in tamper["findings"]
                if tamper_picture(f["method"]) in src]
    if pictures:
        out.append("<div class=keyframes>" + "".join(
            f"<figure>{_img(where, None, css='key')}<figcaption>{_e(method)}</figcaption></figure>"
            for method, where in pictures) + "</div>")
    return "".join(out)


def _scope(r: dict) -> str:
    people = f"{len(r.get('tracks', []))} person(s)"
    if r.get("kind") == "image":
        return f"an image of {r.get('media', {}).get('width')}x{r.get('media', {}).get('height')}, {r.get('faces_found')} face(s)"
    return f"{r.get('frames_analysed')} frame(s) analysed, {r.get('faces_found')} face(s), {people}"


def _timeline(r: dict, threshold: float, band: float, width: int = 900, height: int = 220) -> str:
    """P(fake) of each person's faces over the video's time, with the threshold and the band."""
    faces = r["faces"]
    duration = max(r.get("media", {}).get("duration_s") or 0.0, max(f["timestamp"] for f in faces), 1e-6)
    left, right, top, bottom = 40, 10, 10, 25
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(t: float) -> float:
        return left + plot_w * t / duration

    def y(p: float) -> float:
        return top + plot_h * (1.0 - p)

    colours = ("#1565c0", "#6a1b9a", "#00838f", "#ef6c00", "#4e342e", "#ad1457")
    svg = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' role=img "
           f"aria-label='P(fake) over time per person'>",
           f"<rect x='{left}' y='{top}' width='{plot_w}' height='{plot_h}' fill='#fafafa' stroke='#ccc'/>"]
    if band:
        svg.append(f"<rect x='{left}' y='{y(threshold):.1f}' width='{plot_w}' height='{y(threshold - band) - y(threshold):.1f}' "
                   "fill='#fff3c4'/>")
    svg.append(f"<line x1='{left}' x2='{left + plot_w}' y1='{y(threshold):.1f}' y2='{y(threshold):.1f}' stroke='#c62828' "
               "stroke-dasharray='5,4'/>")
    for p in (0.0, 0.5, 1.0):
        svg.append(f"<text x='{left - 6}' y='{y(p) + 4:.1f}' font-size='11' text-anchor='end'>{p:.1f}</text>")
    svg.append(f"<text x='{left}' y='{height - 6}' font-size='11'>0 s</text>"
               f"<text x='{left + plot_w}' y='{height - 6}' font-size='11' text-anchor='end'>{duration:.1f} s</text>")
    for track in r["tracks"]:
        points = sorted((f["timestamp"], f["score"]) for f in faces if f["track"] == track["track"])
        colour = colours[track["track"] % len(colours)]
        path = " ".join(f"{x(t):.1f},{y(p):.1f}" for t, p in points)
        svg.append(f"<polyline points='{path}' fill='none' stroke='{colour}' stroke-width='2'/>")
        svg.extend(f"<circle cx='{x(t):.1f}' cy='{y(p):.1f}' r='2.5' fill='{colour}'/>" for t, p in points)
        t0, p0 = points[0]
        svg.append(f"<text x='{x(t0) + 4:.1f}' y='{y(p0) - 5:.1f}' font-size='11' fill='{colour}'>person {track['track']}</text>")
    svg.append("</svg>")
    return (f"<p>P(fake) per frame and person (dashed: the threshold {threshold:.3f}"
            f"{'; shaded: uncertain' if band else ''}):</p>" + "".join(svg))


# ----------------------------------------------------------------------------- images


def _frames_of(r: dict, settings: dict) -> Optional[dict[int, np.ndarray]]:
    """The sampled frames the scan saw, by frame index (decoded again, with the scan's settings)."""
    from .media import MediaLimits, load_media

    path = Path(r["path"])
    if not path.is_file():
        return None
    limits = MediaLimits(**settings["limits"]) if settings.get("limits") else MediaLimits()
    try:
        _, frames = load_media(path, int(settings.get("frames", 32)), limits,
                               run_length=int(settings.get("run_length", 1)))
    except Exception:  # the file changed since the scan: report without pictures
        return None
    return {f.index: f.image for f in frames}


KEY_FRAME = "keyframe.jpg"  # the key frame, each face's box, person and P(fake) drawn on it
KEY_FRAME_MAP = "keyframe-map.jpg"  # the same frame with the faces' forgery maps placed back on it, and a colour bar


IMAGE_MAP = "image-map.jpg"  # the picture with the whole-image detector's patch map over it


def tamper_picture(method: str) -> str:
    return f"tamper-{method}.jpg"  # the picture with one tampering method's mask over it


def face_picture(i: Optional[int]) -> str:
    return f"face-{i:04d}.png"  # face i's thumbnail


def heatmap_picture(i: int) -> str:
    return f"heatmap-{i:04d}.png"  # face i's heatmap (the scan's --heatmap PNG) with a colour bar and its score


def key_frame_index(r: dict) -> int:
    return max(r["faces"], key=lambda f: f["score"])["frame_index"]


def evidence_images(r: dict, frames: dict[int, np.ndarray], threshold: float) -> dict[str, np.ndarray]:
    """The pictures of one scored file (RGB arrays, by the names above): thumbnails of every face,
    heatmaps with a scale where the scan wrote them, the annotated key frame and, where the scan
    wrote masks (`--masks`), the key frame with its faces' maps placed back on it."""
    faces = r.get("faces", [])
    pictures: dict[str, np.ndarray] = {}
    picture = frames.get(0) if r.get("kind") == "image" else None
    if picture is not None:
        whole = r.get("whole_image") or {}
        for name, mask in [(IMAGE_MAP, whole.get("patch_map"))] + [
                (tamper_picture(f["method"]), f.get("mask")) for f in (r.get("tamper") or {}).get("findings", [])]:
            overlaid = _picture_map(picture, mask) if mask else None
            if overlaid is not None:
                pictures[name] = overlaid
    for i, face in enumerate(faces):
        image = frames.get(face["frame_index"])
        if image is not None:
            pictures[face_picture(i)] = _thumbnail(image, face)
        if face.get("heatmap"):
            heat = _heatmap_with_scale(face["heatmap"], face["score"])
            if heat is not None:
                pictures[heatmap_picture(i)] = heat
    if faces and frames.get(key_frame_index(r)) is not None:
        key = key_frame_index(r)
        on_frame = [f for f in faces if f["frame_index"] == key]
        pictures[KEY_FRAME] = _annotate(frames[key], on_frame, threshold)
        mapped = _frame_map(frames[key], on_frame)
        if mapped is not None:
            pictures[KEY_FRAME_MAP] = _with_colour_bar(_annotate(mapped, on_frame, threshold))
    return pictures


def encode_picture(rgb: np.ndarray, name: str) -> bytes:
    """PNG or JPEG bytes, by the name's extension."""
    jpeg = name.endswith(".jpg")
    ok, encoded = cv2.imencode(".jpg" if jpeg else ".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, 85] if jpeg else [])
    if not ok:
        raise ValueError(f"cannot encode {name}")
    return encoded.tobytes()


def data_uri(picture: np.ndarray | bytes, name: str) -> str:
    """An img src holding the picture (an RGB array, or its encoded bytes) itself."""
    mime = "jpeg" if name.endswith(".jpg") else "png"
    encoded = picture if isinstance(picture, bytes) else encode_picture(picture, name)
    return f"data:image/{mime};base64,{base64.b64encode(encoded).decode()}"


def _thumbnail(image: np.ndarray, face: dict) -> np.ndarray:
    from .faces import crop_face

    return crop_face(image, face["box"], 1.3, THUMB)


def _annotate(image: np.ndarray, faces: list[dict], threshold: float) -> np.ndarray:
    scale = min(1.0, KEY_FRAME_WIDTH / image.shape[1])
    canvas = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else image.copy()
    font, weight = _font_for(canvas.shape[1])
    for face in faces:
        x1, y1, x2, y2 = (int(round(v * scale)) for v in face["box"])
        colour = (198, 40, 40) if face["score"] >= threshold else (46, 125, 50)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, 2 * weight)
        label = f"person {face['track']}  P(fake) {face['score']:.2f}"
        (w, h), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font, weight)
        y = max(h + 6, y1 - 4)
        x = min(max(0, x1), max(0, canvas.shape[1] - w - 6))
        cv2.rectangle(canvas, (x, y - h - 6), (x + w + 6, y + 4), (255, 255, 255), -1)  # readable on any frame
        cv2.putText(canvas, label, (x + 3, y), cv2.FONT_HERSHEY_SIMPLEX, font, colour, weight, cv2.LINE_AA)
    return canvas


def _font_for(width: int) -> tuple[float, int]:
    """Label size and stroke for a picture `width` px wide, readable when it is shown half size."""
    return (0.5, 1) if width < 640 else (0.8, 2)


def _frame_map(image: np.ndarray, faces: list[dict], alpha: float = 0.5) -> Optional[np.ndarray]:
    """The frame with each face's mask (P(manipulated), the scan's --masks PNG over its crop_box)
    placed back with `explain.uncrop` and blended in as JET inside the face squares; None without masks."""
    from .explain import uncrop

    height, width = image.shape[:2]
    combined = np.zeros((height, width), np.float32)
    covered = np.zeros((height, width), bool)
    for face in faces:
        mask = cv2.imread(face["mask"], cv2.IMREAD_GRAYSCALE) if face.get("mask") and face.get("crop_box") else None
        if mask is None:
            continue
        square = tuple(int(v) for v in face["crop_box"])
        combined = np.maximum(combined, uncrop(mask.astype(np.float32) / 255.0, square, (height, width)))
        left, top, right, bottom = square
        covered[max(top, 0):max(bottom, 0), max(left, 0):max(right, 0)] = True
    if not covered.any():
        return None
    colour = cv2.applyColorMap(np.uint8(255 * combined), cv2.COLORMAP_JET)[..., ::-1].astype(np.float32)
    weight = np.where(covered, alpha, 0.0)[..., None]
    return np.uint8(image * (1 - weight) + colour * weight)


def _picture_map(image: np.ndarray, mask_png: str, alpha: float = 0.5) -> Optional[np.ndarray]:
    """A picture-sized grayscale map (P x 255) blended over the picture as JET, with its scale."""
    mask = cv2.imread(mask_png, cv2.IMREAD_GRAYSCALE)
    if mask is None:
        return None
    scale = min(1.0, KEY_FRAME_WIDTH / image.shape[1])
    canvas = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else image
    mask = cv2.resize(mask, (canvas.shape[1], canvas.shape[0]), interpolation=cv2.INTER_LINEAR)
    colour = cv2.applyColorMap(mask, cv2.COLORMAP_JET)[..., ::-1].astype(np.float32)
    blended = np.uint8(canvas * (1 - alpha) + colour * alpha)
    return _with_colour_bar(blended)


def _colour_bar(length: int, thickness: int = 10) -> np.ndarray:
    """A horizontal JET scale from 0 (left) to 1 (right), RGB."""
    ramp = np.tile(np.linspace(0, 255, length).astype(np.uint8), (thickness, 1))
    return cv2.applyColorMap(ramp, cv2.COLORMAP_JET)[..., ::-1]


def _with_colour_bar(image: np.ndarray) -> np.ndarray:
    """`image` over a labelled scale of P(manipulated), 0 (left) to 1 (right)."""
    width = image.shape[1]
    font, weight = _font_for(width)
    line = int(32 * font)  # px per text line
    strip = np.full((2 * line + 12, width, 3), 255, np.uint8)
    black = (0, 0, 0)
    cv2.putText(strip, "forgery map: P(manipulated)", (6, line), cv2.FONT_HERSHEY_SIMPLEX, font, black, weight, cv2.LINE_AA)
    cv2.putText(strip, "0", (6, 2 * line + 4), cv2.FONT_HERSHEY_SIMPLEX, font, black, weight, cv2.LINE_AA)
    cv2.putText(strip, "1", (width - line, 2 * line + 4), cv2.FONT_HERSHEY_SIMPLEX, font, black, weight, cv2.LINE_AA)
    left, right = line + 4, width - line - 8
    if right - left > 10:
        strip[line + 10:2 * line + 6, left:right] = _colour_bar(right - left, line - 4)
    return np.vstack([image, strip])


def _heatmap_with_scale(png: str, score: float) -> Optional[np.ndarray]:
    """The scan's heatmap PNG with a colour bar (0 to 1, JET) and its score underneath."""
    image = cv2.imread(png, cv2.IMREAD_COLOR)
    if image is None:
        return None
    image = cv2.cvtColor(cv2.resize(image, (THUMB, THUMB)), cv2.COLOR_BGR2RGB)
    bar = _colour_bar(THUMB, 8)
    strip = np.full((16, THUMB, 3), 255, np.uint8)
    cv2.putText(strip, "0", (1, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(strip, "1", (THUMB - 8, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(strip, f"{score:.2f}", (THUMB // 2 - 12, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([image, bar, strip])


def _img(src: Optional[str], size: Optional[int], css: str = "") -> str:
    if not src:
        return ""
    width = f" width={size}" if size else ""
    cls = f" class={css}" if css else ""
    return f"<img{cls}{width} alt='' src='{_e(src)}'>"


# ----------------------------------------------------------------------------- text


def _badge(item: dict) -> str:
    verdict = item.get("verdict")
    text = verdict.upper() if verdict else str(item.get("status", "not scored"))
    return f"<span class='v {verdict or 'none'}'>{_e(text)}</span>"


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _trim(value: Any, limit: int = 300) -> Any:
    """Provenance without its long fingerprint strings (thousands of hex digits)."""
    if isinstance(value, dict):
        return {k: _trim(v, limit) for k, v in value.items()}
    if isinstance(value, list):
        return [_trim(v, limit) for v in value[:50]]
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + f"... ({len(value)} characters)"
    return value

