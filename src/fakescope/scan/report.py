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
from typing import Any, Optional

import cv2
import numpy as np

THUMB = 96  # px, face thumbnails
KEY_FRAME_WIDTH = 960  # px at most
MAX_FACES_SHOWN = 48  # per file: the most suspicious first

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#1b1b1b;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2.2em;border-bottom:1px solid #ddd;padding-bottom:.2em;word-break:break-all}
.v{font-weight:700;padding:.1em .5em;border-radius:3px;color:#fff}.fake{background:#c62828}.real{background:#2e7d32}
.uncertain{background:#f9a825;color:#222}.none{background:#757575}
table{border-collapse:collapse;margin:.6em 0}td,th{border-bottom:1px solid #eee;padding:.25em .7em;text-align:left}
.faces{display:flex;flex-wrap:wrap;gap:8px}.face{text-align:center;font-size:12px}.face img{display:block}
img.key{max-width:100%;border:1px solid #ccc}code,pre{background:#f5f5f5;padding:.1em .3em}
pre{padding:.6em;overflow:auto;max-height:20em}.muted{color:#666}
"""


def write_html(report: dict[str, Any], path: str | Path) -> Path:
    """Write the report of `report` (a scan's JSON) to `path`; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report), encoding="utf-8")
    return path


def render_html(report: dict[str, Any]) -> str:
    settings = report.get("settings", {})
    threshold = float(settings.get("threshold", 0.5))
    band = float(settings.get("uncertain_band", 0.0) or 0.0)
    model = report.get("model", {})
    results = report.get("results", [])
    counts: dict[str, int] = {}
    for r in results:
        counts[r.get("verdict") or r.get("status")] = counts.get(r.get("verdict") or r.get("status"), 0) + 1
    rule = f"FAKE from P(fake) {threshold:.3f}" + (f", UNCERTAIN from {threshold - band:.3f}" if band else "") + ", REAL below"
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        "<meta name=viewport content='width=device-width,initial-scale=1'>",
        f"<title>fakescope report: {len(results)} file(s)</title><style>{_STYLE}</style></head><body>",
        f"<h1>fakescope report: {len(results)} file(s)</h1>",
        f"<p>{_e(', '.join(f'{n} {k}' for k, n in sorted(counts.items())))}. Verdicts: {_e(rule)}. "
        f"Model <code>{_e(model.get('name'))}</code> ({_e(model.get('arch'))}, {_e(model.get('backend', ''))} "
        f"on {_e(model.get('device', ''))}); fakescope {_e(report.get('fakescope_version', ''))}.</p>",
        _summary_table(results),
    ]
    for number, result in enumerate(results):
        parts.append(_file_section(number, result, settings, threshold, band))
    parts.append("<h2>Model</h2>")
    parts.append(f"<p>{_e(model.get('name'))}: architecture {_e(model.get('arch'))}, preprocessing "
                 f"<code>{_e(json.dumps(model.get('preprocess', {})))}</code>.</p>")
    parts.append(f"<details><summary>provenance (what it was trained and calibrated on)</summary><pre>"
                 f"{_e(json.dumps(_trim(model.get('provenance', {})), indent=2))}</pre></details>")
    parts.append(f"<details><summary>scan settings</summary><pre>{_e(json.dumps(settings, indent=2))}</pre></details>")
    parts.append("</body></html>")
    return "\n".join(parts)


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


def _file_section(number: int, r: dict, settings: dict, threshold: float, band: float) -> str:
    out = [f"<h2 id='file{number}'>{_e(r['path'])}</h2>"]
    if r.get("status") != "ok":
        out.append(f"<p>{_badge(r)} {_e(r.get('message') or '')}</p>")
        return "".join(out)
    out.append(f"<p>{_badge(r)} P(fake) = <b>{r['score']:.3f}</b> ({r['from_threshold']:+.3f} from the threshold "
               f"{threshold:.3f}); {r.get('frames_analysed')} frame(s) analysed, {r.get('faces_found')} face(s), "
               f"{len(r.get('tracks', []))} person(s); {r.get('seconds', 0):.2f} s.</p>")
    for warning in r.get("warnings", []):
        out.append(f"<p class=muted>warning: {_e(warning)}</p>")
    frames = _frames_of(r, settings)
    if frames is None:
        out.append("<p class=muted>The media file is not where the scan read it, so no thumbnails or key frame.</p>")
    faces = r.get("faces", [])
    thumbs = {}
    if frames is not None:
        for i, face in enumerate(faces):
            image = frames.get(face["frame_index"])
            if image is not None:
                thumbs[i] = _thumbnail(image, face)
    out.append("<table><tr><th>person</th><th>face</th><th>P(fake)</th><th>vs threshold</th><th>verdict</th>"
               "<th>faces</th><th>frames</th><th>voted</th></tr>")
    for track in r.get("tracks", []):
        members = [i for i, f in enumerate(faces) if f["track"] == track["track"]]
        best = max(members, key=lambda i: faces[i]["score"]) if members else None
        thumb = _img(thumbs[best], "png", THUMB) if best in thumbs else ""
        out.append(f"<tr><td>{track['track']}</td><td>{thumb}</td><td>{track['score']:.3f}</td>"
                   f"<td>{track.get('from_threshold', 0):+.3f}</td><td>{_badge(track)}</td><td>{track['faces']}</td>"
                   f"<td>{track['first_frame']}-{track['last_frame']}</td>"
                   f"<td>{'yes' if track['used_for_verdict'] else 'no (seen in few frames)'}</td></tr>")
    out.append("</table>")
    if r.get("kind") == "video" and faces:
        out.append(_timeline(r, threshold, band))
    if frames is not None and faces:
        key = max(faces, key=lambda f: f["score"])["frame_index"]
        annotated = _annotate(frames[key], [f for f in faces if f["frame_index"] == key], threshold)
        what = "the image" if r.get("kind") == "image" else f"frame {key}, the most suspicious face's"
        out.append(f"<p>Key frame ({_e(what)}): each face's box, person and P(fake).</p>")
        out.append(_img(annotated, "jpg", None, css="key"))
    shown = sorted(range(len(faces)), key=lambda i: -faces[i]["score"])[:MAX_FACES_SHOWN]
    if shown and (thumbs or any(faces[i].get("heatmap") for i in shown)):
        out.append(f"<p>Scored faces, most suspicious first ({len(shown)} of {len(faces)})"
                   f"{'; with the heatmap the scan wrote' if any(faces[i].get('heatmap') for i in shown) else ''}:</p>")
        out.append("<div class=faces>")
        for i in shown:
            face = faces[i]
            images = _img(thumbs[i], "png", THUMB) if i in thumbs else ""
            heat = _heatmap_with_scale(face["heatmap"], face["score"]) if face.get("heatmap") else None
            if heat is not None:
                images += _img(heat, "png", THUMB)
            out.append(f"<div class=face>{images}frame {face['frame_index']}, person {face['track']}<br>"
                       f"P(fake) {face['score']:.3f}</div>")
        out.append("</div>")
    return "".join(out)


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


def _thumbnail(image: np.ndarray, face: dict) -> np.ndarray:
    from .faces import crop_face

    return crop_face(image, face["box"], 1.3, THUMB)


def _annotate(image: np.ndarray, faces: list[dict], threshold: float) -> np.ndarray:
    scale = min(1.0, KEY_FRAME_WIDTH / image.shape[1])
    canvas = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else image.copy()
    for face in faces:
        x1, y1, x2, y2 = (int(round(v * scale)) for v in face["box"])
        colour = (198, 40, 40) if face["score"] >= threshold else (46, 125, 50)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, 2)
        label = f"person {face['track']}  P(fake) {face['score']:.2f}"
        cv2.putText(canvas, label, (x1, max(14, y1 - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)
    return canvas


def _heatmap_with_scale(png: str, score: float) -> Optional[np.ndarray]:
    """The scan's heatmap PNG with a colour bar (0 to 1, JET) and its score underneath."""
    image = cv2.imread(png, cv2.IMREAD_COLOR)
    if image is None:
        return None
    image = cv2.cvtColor(cv2.resize(image, (THUMB, THUMB)), cv2.COLOR_BGR2RGB)
    bar = cv2.applyColorMap(np.tile(np.linspace(0, 255, THUMB).astype(np.uint8), (8, 1)), cv2.COLORMAP_JET)[..., ::-1]
    strip = np.full((16, THUMB, 3), 255, np.uint8)
    cv2.putText(strip, "0", (1, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(strip, "1", (THUMB - 8, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(strip, f"{score:.2f}", (THUMB // 2 - 12, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([image, bar, strip])


def _img(rgb: np.ndarray, kind: str, size: Optional[int], css: str = "") -> str:
    ok, encoded = cv2.imencode(f".{kind}", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, 85] if kind == "jpg" else [])
    if not ok:
        return ""
    mime = "jpeg" if kind == "jpg" else kind
    width = f" width={size}" if size else ""
    cls = f" class={css}" if css else ""
    return f"<img{cls}{width} alt='' src='data:image/{mime};base64,{base64.b64encode(encoded.tobytes()).decode()}'>"


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

