"""COCO JSON, Pascal VOC XML and YOLO txt readers and writers (errors name the file and line).

Each reader checks the whole file set and raises one `DataError` listing its problems (`Problems`: the first
20, then `... and N more`), and clips boxes a little past the image border with one warning (`check_box`;
`strict=True` refuses them instead).

Written by hand (with json / xml.etree / expat) because no maintained package reads all three into one
form without a heavy framework; pycocotools only reads COCO and reports no line numbers.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from xml.parsers import expat

import numpy as np

from toolkit.data.detections import DetectionData, DetectionRecord, Problems, check_box
from toolkit.data.errors import DataError
from toolkit.data.images import IMAGE_EXTENSIONS
from toolkit.data.text import decode_error_message


# ---- COCO ---------------------------------------------------------------------------------------------
def read_coco(path: str, image_dir: str | None = None, class_names=None, strict: bool = False) -> DetectionData:
    """COCO detection JSON (`images`, `annotations` with `bbox` = [x, y, w, h], `categories`).

    Every bad image entry, annotation and missing image file is reported in one `DataError`; boxes a little
    past the border are clipped (`toolkit.data.detections.check_box`; `strict=True` refuses them).
    """
    if os.path.isdir(path):
        found = sorted(n for n in os.listdir(path) if n.endswith(".json"))
        if not found:
            raise DataError(f"no COCO .json file in {path!r}")
        path = os.path.join(path, found[0])
    text = _read_utf8(path)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise DataError(f"{path}:{error.lineno}: invalid JSON ({error.msg})") from None
    if not isinstance(document, dict):
        raise DataError(f"{path}: a COCO file is a JSON object with 'images', 'annotations' and 'categories'")
    for key in ("images", "annotations", "categories"):
        if not isinstance(document.get(key), list):
            raise DataError(f"{path}: COCO file needs a {key!r} list")
    root = os.path.dirname(os.path.abspath(path))
    if image_dir is None:
        image_dir = os.path.join(root, "images") if os.path.isdir(os.path.join(root, "images")) else root
    problems = Problems(path)
    bad = [c for c in document["categories"] if not (isinstance(c, dict) and "id" in c and "name" in c)]
    for c in bad:
        problems.add(f"{path}: category {c!r} needs an 'id' and a 'name'")
    problems.raise_if_any()  # without the class list, every annotation would be reported too
    categories = sorted(document["categories"], key=lambda c: c["id"])
    names = [str(c["name"]) for c in categories]
    if class_names is not None and list(class_names) != names:
        raise DataError(f"{path}: categories {names} differ from the expected classes {list(class_names)}")
    category_index = {c["id"]: i for i, c in enumerate(categories)}
    images, bad_images = _coco_images(document["images"], path, _json_array_lines(text, "images"), problems)
    lines = _json_array_lines(text, "annotations")
    for n, ann in enumerate(document["annotations"]):
        ann_id = ann.get("id") if isinstance(ann, dict) else None
        where = f"{path}:{lines[n] if n < len(lines) else '?'} (annotations[{n}], id {ann_id})"
        try:
            if not isinstance(ann, dict):
                raise DataError(f"{where}: an annotation is a JSON object. Received: {ann!r}")
            if ann.get("image_id") in bad_images:
                continue  # its image entry is reported already
            if ann.get("image_id") not in images:
                raise DataError(f"{where}: unknown image_id {ann.get('image_id')!r}")
            if ann.get("category_id") not in category_index:
                raise DataError(f"{where}: unknown category_id {ann.get('category_id')!r}")
            bbox = ann.get("bbox")
            if not isinstance(bbox, list) or len(bbox) != 4:
                raise DataError(f"{where}: bbox must be [x, y, width, height]. Received: {bbox!r}")
            try:
                x, y, w, h = (float(v) for v in bbox)
            except (TypeError, ValueError):
                raise DataError(f"{where}: bbox must be 4 numbers [x, y, width, height]. Received: {bbox!r}") from None
            entry = images[ann["image_id"]]
            box = check_box([x, y, x + w, y + h], entry["width"], entry["height"], where, strict, problems.clipped)
        except DataError as error:
            problems.add(error)
            continue
        entry["boxes"].append(box)
        entry["classes"].append(category_index[ann["category_id"]])
    records = []
    for image_id, entry in images.items():
        file = os.path.join(image_dir, entry["file_name"])
        if not os.path.isfile(file):
            problems.add(f"{path}: image {entry['file_name']!r} (id {image_id}) not found in {image_dir}")
            continue
        records.append(_record(file, entry["width"], entry["height"], entry["boxes"], entry["classes"]))
    problems.raise_if_any()
    problems.warn_clipped()
    return DetectionData(records, names)


def _coco_images(entries, path, lines, problems):
    """`({id: entry}, ids of bad entries)`; each bad entry (missing key, size not a number) is a problem."""
    images, bad = {}, set()
    for i, image in enumerate(entries):
        info = image if isinstance(image, dict) else {}
        where = f"{path}:{lines[i] if i < len(lines) else '?'} (images[{i}], id {info.get('id')})"
        missing = [k for k in ("id", "file_name", "width", "height") if k not in info]
        try:
            if missing:
                raise DataError(f"{where}: image entry has no {', '.join(map(repr, missing))}")
            width, height = float(info["width"]), float(info["height"])
            if not (width > 0 and height > 0):
                raise ValueError
        except DataError as error:
            problems.add(error)
            bad.add(info.get("id"))
            continue
        except (TypeError, ValueError):
            problems.add(f"{where}: width and height must be positive numbers. Received: "
                         f"{info.get('width')!r} x {info.get('height')!r}")
            bad.add(info.get("id"))
            continue
        images[info["id"]] = {"file_name": str(info["file_name"]), "width": int(width), "height": int(height),
                              "boxes": [], "classes": []}
    return images, bad - set(images)


def _json_array_lines(text: str, key: str) -> list:
    """Line numbers where each element of the top-level array `key` starts (for error messages)."""
    decoder = json.JSONDecoder()
    start = text.find(f'"{key}"')
    if start < 0:
        return []
    index = text.index("[", start) + 1
    lines = []
    while True:
        while index < len(text) and text[index] in " \t\r\n,":
            index += 1
        if index >= len(text) or text[index] == "]":
            return lines
        lines.append(text.count("\n", 0, index) + 1)
        try:
            _, index = decoder.raw_decode(text, index)
        except ValueError:
            return lines


def write_coco(data: DetectionData, directory: str) -> str:
    """Writes `directory/annotations.json` and the images (PNG when in memory) under `directory/images/`."""
    files = _write_images(data, os.path.join(directory, "images"))
    images, annotations = [], []
    for i, (record, file) in enumerate(zip(data.records, files)):
        images.append({"id": i + 1, "file_name": os.path.basename(file), "width": record.width, "height": record.height})
        for box, cls in zip(record.boxes, record.classes):
            x0, y0, x1, y1 = (float(v) for v in box)
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": int(cls) + 1,
                                "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0), "iscrowd": 0})
    categories = [{"id": i + 1, "name": name} for i, name in enumerate(data.class_names)]
    path = os.path.join(directory, "annotations.json")
    with open(path, "w") as f:
        json.dump({"images": images, "annotations": annotations, "categories": categories}, f, indent=1)
    return path


# ---- Pascal VOC ---------------------------------------------------------------------------------------
def read_voc(path: str, class_names=None, strict: bool = False) -> DetectionData:
    """Pascal VOC: one XML per image (`Annotations/` + `JPEGImages/`, or XML beside the images).

    Class ids follow `class_names`, else a `classes.txt` in `path`, else the sorted names found. The problems
    of all the files are reported in one `DataError`; boxes a little past the border are clipped
    (`toolkit.data.detections.check_box`; `strict=True` refuses them).
    """
    xml_dir = os.path.join(path, "Annotations") if os.path.isdir(os.path.join(path, "Annotations")) else path
    image_dir = os.path.join(path, "JPEGImages") if os.path.isdir(os.path.join(path, "JPEGImages")) else xml_dir
    files = sorted(os.path.join(xml_dir, n) for n in os.listdir(xml_dir) if n.endswith(".xml"))
    if not files:
        raise DataError(f"no .xml annotation files in {xml_dir!r}")
    parsed = []
    for file in files:
        try:
            parsed.append(_parse_voc(file, image_dir))
        except DataError as error:  # the file cannot be read at all
            parsed.append(error)
    if class_names is None and os.path.isfile(os.path.join(path, "classes.txt")):
        class_names = [line.strip() for line in _read_utf8(os.path.join(path, "classes.txt")).split("\n")
                       if line.strip()]
    if class_names is None:
        class_names = sorted({o[0] for p in parsed if not isinstance(p, DataError) for o in p[3] if o[0] is not None})
    names = list(class_names)
    index = {name: i for i, name in enumerate(names)}
    problems, records = Problems(path), []
    for file, entry in zip(files, parsed):  # problems in file and line order
        if isinstance(entry, DataError):
            problems.add(entry)
            continue
        image, width, height, objects = entry
        boxes, classes = [], []
        for name, box, line in objects:
            where = f"{file}:{line}"
            try:
                if name is None:  # `box` is the message of a problem found while parsing
                    raise DataError(box)
                if name not in index:
                    raise DataError(f"{where}: unknown class {name!r} (known: {names})")
                boxes.append(check_box(box, width, height, where, strict, problems.clipped))
            except DataError as error:
                problems.add(error)
                continue
            classes.append(index[name])
        records.append(_record(image, width, height, boxes, classes))
    problems.raise_if_any()
    problems.warn_clipped()
    return DetectionData(records, names)


def _parse_voc(file: str, image_dir: str):
    """`(image, width, height, objects)`: `(name, box, line)` per object, `(None, message, line)` for a bad
    object or a missing image; an unreadable file (malformed XML, no usable <size>) raises DataError."""
    with open(file, "rb") as f:
        content = f.read()
    lines, parser = [], expat.ParserCreate()
    parser.StartElementHandler = lambda name, attrs: lines.append(parser.CurrentLineNumber) if name == "object" else None
    try:
        parser.Parse(content, True)
        root = ET.fromstring(content)
    except (expat.ExpatError, ET.ParseError) as error:
        raise DataError(f"{file}:{getattr(error, 'lineno', '?')}: malformed XML ({error})") from None

    def number(node, tag, where):
        text = node.findtext(tag)
        try:
            return float(text)
        except (TypeError, ValueError):
            raise DataError(f"{where}: <{tag}> must be a number. Received: {text!r}") from None

    size = root.find("size")
    if size is None:
        raise DataError(f"{file}:1: missing <size> (width, height)")
    width, height = int(number(size, "width", file)), int(number(size, "height", file))
    name = root.findtext("filename")
    image = os.path.join(image_dir, name or "")
    objects = []
    if not name or not os.path.isfile(image):
        objects.append((None, f"{file}:1: image file {name!r} not found in {image_dir}", 1))
    for obj, line in zip(root.findall("object"), lines):
        where = f"{file}:{line}"
        box = obj.find("bndbox")
        try:
            if box is None:
                raise DataError(f"{where}: <object> without <bndbox>")
            # VOC boxes are 1-based inclusive pixel indices: xmin=1 is the first column, xmax=W the last.
            coords = [number(box, tag, where) for tag in ("xmin", "ymin", "xmax", "ymax")]
        except DataError as error:
            objects.append((None, str(error), line))
            continue
        objects.append((str(obj.findtext("name", "")).strip(), [coords[0] - 1, coords[1] - 1, coords[2], coords[3]],
                        line))
    return image, width, height, objects


def write_voc(data: DetectionData, directory: str) -> str:
    """Writes `directory/Annotations/*.xml` and `directory/JPEGImages/` (PNG files when in memory)."""
    files = _write_images(data, os.path.join(directory, "JPEGImages"))
    os.makedirs(os.path.join(directory, "Annotations"), exist_ok=True)
    for record, file in zip(data.records, files):
        root = ET.Element("annotation")
        ET.SubElement(root, "filename").text = os.path.basename(file)
        size = ET.SubElement(root, "size")
        for tag, value in (("width", record.width), ("height", record.height), ("depth", 3)):
            ET.SubElement(size, tag).text = str(value)
        for box, cls in zip(record.boxes, record.classes):
            obj = ET.SubElement(root, "object")
            ET.SubElement(obj, "name").text = data.class_names[int(cls)]
            ET.SubElement(obj, "difficult").text = "0"
            bndbox = ET.SubElement(obj, "bndbox")
            values = (box[0] + 1, box[1] + 1, box[2], box[3])
            for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), values):
                ET.SubElement(bndbox, tag).text = _num(value)
        ET.indent(root)
        stem = os.path.splitext(os.path.basename(file))[0]
        ET.ElementTree(root).write(os.path.join(directory, "Annotations", stem + ".xml"))
    with open(os.path.join(directory, "classes.txt"), "w") as f:  # VOC has no class list; keep the ids stable
        f.write("\n".join(data.class_names) + "\n")
    return directory


# ---- YOLO ---------------------------------------------------------------------------------------------
def read_yolo(path: str, class_names=None, strict: bool = False) -> DetectionData:
    """YOLO: `images/` + `labels/` (one `<stem>.txt` per image: `class cx cy w h`, normalised) + `classes.txt`.

    The problems of all the label files are reported in one `DataError`; boxes a little past the border are
    clipped (`toolkit.data.detections.check_box`; `strict=True` refuses them).
    """
    from PIL import Image

    image_dir = os.path.join(path, "images") if os.path.isdir(os.path.join(path, "images")) else path
    label_dir = os.path.join(path, "labels") if os.path.isdir(os.path.join(path, "labels")) else path
    names_file = os.path.join(path, "classes.txt")
    if class_names is None:
        if not os.path.isfile(names_file):
            raise DataError(f"{path}: YOLO data needs a classes.txt (one class name per line) or class_names=")
        class_names = [line.strip() for line in _read_utf8(names_file).split("\n") if line.strip()]
    names = list(class_names)
    problems = Problems(path)
    images = sorted(n for n in os.listdir(image_dir) if n.lower().endswith(IMAGE_EXTENSIONS))
    stems = {os.path.splitext(n)[0] for n in images}
    for label in sorted(os.listdir(label_dir)):
        if label.endswith(".txt") and label != "classes.txt" and os.path.splitext(label)[0] not in stems:
            problems.add(f"{os.path.join(label_dir, label)}:1: no image for this label file in {image_dir}")
    records = []
    for name in images:
        image = os.path.join(image_dir, name)
        try:
            with Image.open(image) as im:
                width, height = im.size
        except (OSError, ValueError) as error:
            problems.add(f"{image}: unreadable image ({error})")
            continue
        label = os.path.join(label_dir, os.path.splitext(name)[0] + ".txt")
        boxes, classes = [], []
        if os.path.isfile(label):
            try:
                text = _read_utf8(label)
            except DataError as error:
                problems.add(error)
                text = ""
            for number, line in enumerate(text.split("\n"), 1):
                if not line.strip():
                    continue
                try:
                    box, cls = _yolo_box(line, f"{label}:{number}", width, height, len(names), strict, problems)
                except DataError as error:
                    problems.add(error)
                    continue
                boxes.append(box)
                classes.append(cls)
        records.append(_record(image, width, height, boxes, classes))
    problems.raise_if_any()
    problems.warn_clipped()
    return DetectionData(records, names)


def _yolo_box(line, where, width, height, class_count, strict, problems):
    """`(pixel xyxy box, class id)` of one `class cx cy w h` line, or a DataError naming `where`."""
    parts = line.split()
    try:
        cls, cx, cy, w, h = int(parts[0]), *(float(v) for v in parts[1:5])
        if len(parts) != 5:
            raise ValueError
    except (ValueError, IndexError):
        raise DataError(f"{where}: expected 'class cx cy w h'. Received: {line.strip()!r}") from None
    if not 0 <= cls < class_count:
        raise DataError(f"{where}: unknown class id {cls} (classes.txt lists {class_count})")
    shown = f"{[cx, cy, w, h]} (normalised cx cy w h)"
    if w <= 0 or h <= 0:
        raise DataError(f"{where}: box {shown} has a width or height <= 0")
    box = [(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height]
    # normalised coordinates carry rounding of about 1e-3 of the side: clipped silently as before
    return check_box(box, width, height, where, strict, problems.clipped, noise=max(0.5, 1e-3 * max(width, height)),
                     shown=shown), cls


def write_yolo(data: DetectionData, directory: str) -> str:
    """Writes `directory/images/`, `directory/labels/*.txt` and `directory/classes.txt`."""
    files = _write_images(data, os.path.join(directory, "images"))
    os.makedirs(os.path.join(directory, "labels"), exist_ok=True)
    for record, file in zip(data.records, files):
        stem = os.path.splitext(os.path.basename(file))[0]
        with open(os.path.join(directory, "labels", stem + ".txt"), "w") as f:
            for box, cls in zip(record.boxes, record.classes):
                x0, y0, x1, y1 = (float(v) for v in box)
                values = ((x0 + x1) / 2 / record.width, (y0 + y1) / 2 / record.height,
                          (x1 - x0) / record.width, (y1 - y0) / record.height)
                f.write(f"{int(cls)} " + " ".join(f"{v:.8f}" for v in values) + "\n")
    with open(os.path.join(directory, "classes.txt"), "w") as f:
        f.write("\n".join(data.class_names) + "\n")
    return directory


# ---- shared -------------------------------------------------------------------------------------------
def _read_utf8(path: str) -> str:
    """The text of an annotation file, which must be UTF-8 (a bad byte: DataError naming file, line, byte)."""
    with open(path, "rb") as f:
        content = f.read()
    try:
        return content.decode("utf-8-sig").replace("\r\n", "\n").replace("\r", "\n")
    except UnicodeDecodeError as error:
        raise DataError(decode_error_message(path, content, error, "utf-8", fix="save it as UTF-8")) from None


def _record(image, width, height, boxes, classes) -> DetectionRecord:
    return DetectionRecord(image, int(width), int(height), np.asarray(boxes, np.float32).reshape(-1, 4),
                           np.asarray(classes, np.int32).reshape(-1))


def _write_images(data: DetectionData, folder: str) -> list:
    import shutil

    from PIL import Image

    os.makedirs(folder, exist_ok=True)
    files = []
    for i, record in enumerate(data.records):
        if record.pixels is not None:
            file = os.path.join(folder, f"{i:06d}.png")
            pixels = np.asarray(record.pixels, np.uint8)
            Image.fromarray(pixels[..., 0] if pixels.ndim == 3 and pixels.shape[-1] == 1 else pixels).save(file)
        else:
            file = os.path.join(folder, os.path.basename(record.image))
            if os.path.abspath(file) != os.path.abspath(record.image):
                shutil.copyfile(record.image, file)
        files.append(file)
    return files


def _num(value) -> str:
    value = float(value)
    return str(int(value)) if value.is_integer() else f"{value:.4f}"
