"""COCO JSON, Pascal VOC XML and YOLO txt readers and writers (errors name the file and line).

Written by hand (with json / xml.etree / expat) because no maintained package reads all three into one
form without a heavy framework; pycocotools only reads COCO and reports no line numbers.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from xml.parsers import expat

import numpy as np

from toolkit.data.detections import DetectionData, DetectionRecord, check_box
from toolkit.data.errors import DataError
from toolkit.data.images import IMAGE_EXTENSIONS


# ---- COCO ---------------------------------------------------------------------------------------------
def read_coco(path: str, image_dir: str | None = None, class_names=None) -> DetectionData:
    """COCO detection JSON (`images`, `annotations` with `bbox` = [x, y, w, h], `categories`)."""
    if os.path.isdir(path):
        path = os.path.join(path, sorted(n for n in os.listdir(path) if n.endswith(".json"))[0])
    with open(path) as f:
        text = f.read()
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise DataError(f"{path}:{error.lineno}: invalid JSON ({error.msg})") from None
    for key in ("images", "annotations", "categories"):
        if not isinstance(document.get(key), list):
            raise DataError(f"{path}: COCO file needs a {key!r} list")
    lines = _json_array_lines(text, "annotations")
    root = os.path.dirname(os.path.abspath(path))
    if image_dir is None:
        image_dir = os.path.join(root, "images") if os.path.isdir(os.path.join(root, "images")) else root
    categories = sorted(document["categories"], key=lambda c: c["id"])
    names = [str(c["name"]) for c in categories]
    if class_names is not None and list(class_names) != names:
        raise DataError(f"{path}: categories {names} differ from the expected classes {list(class_names)}")
    category_index = {c["id"]: i for i, c in enumerate(categories)}
    images, order = {}, []
    for image in document["images"]:
        images[image["id"]] = {"info": image, "boxes": [], "classes": []}
        order.append(image["id"])
    for n, ann in enumerate(document["annotations"]):
        where = f"{path}:{lines[n] if n < len(lines) else '?'} (annotations[{n}], id {ann.get('id')})"
        if ann.get("image_id") not in images:
            raise DataError(f"{where}: unknown image_id {ann.get('image_id')!r}")
        if ann.get("category_id") not in category_index:
            raise DataError(f"{where}: unknown category_id {ann.get('category_id')!r}")
        bbox = ann.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise DataError(f"{where}: bbox must be [x, y, width, height]. Received: {bbox!r}")
        x, y, w, h = (float(v) for v in bbox)
        entry = images[ann["image_id"]]
        check_box([x, y, x + w, y + h], entry["info"]["width"], entry["info"]["height"], where)
        entry["boxes"].append([x, y, x + w, y + h])
        entry["classes"].append(category_index[ann["category_id"]])
    records = []
    for image_id in order:
        entry = images[image_id]
        file = os.path.join(image_dir, entry["info"]["file_name"])
        if not os.path.isfile(file):
            raise DataError(f"{path}: image {entry['info']['file_name']!r} (id {image_id}) not found in {image_dir}")
        records.append(_record(file, entry["info"]["width"], entry["info"]["height"], entry["boxes"], entry["classes"]))
    return DetectionData(records, names)


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
        _, index = decoder.raw_decode(text, index)


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
def read_voc(path: str, class_names=None) -> DetectionData:
    """Pascal VOC: one XML per image (`Annotations/` + `JPEGImages/`, or XML beside the images).

    Class ids follow `class_names`, else a `classes.txt` in `path`, else the sorted names found.
    """
    xml_dir = os.path.join(path, "Annotations") if os.path.isdir(os.path.join(path, "Annotations")) else path
    image_dir = os.path.join(path, "JPEGImages") if os.path.isdir(os.path.join(path, "JPEGImages")) else xml_dir
    files = sorted(os.path.join(xml_dir, n) for n in os.listdir(xml_dir) if n.endswith(".xml"))
    if not files:
        raise DataError(f"no .xml annotation files in {xml_dir!r}")
    parsed = [_parse_voc(file, image_dir) for file in files]
    if class_names is None and os.path.isfile(os.path.join(path, "classes.txt")):
        with open(os.path.join(path, "classes.txt")) as f:
            class_names = [line.strip() for line in f if line.strip()]
    names = list(class_names) if class_names is not None else sorted({o[0] for p in parsed for o in p[3]})
    index = {name: i for i, name in enumerate(names)}
    records = []
    for file, (image, width, height, objects) in zip(files, parsed):
        boxes, classes = [], []
        for name, box, line in objects:
            where = f"{file}:{line}"
            if name not in index:
                raise DataError(f"{where}: unknown class {name!r} (known: {names})")
            check_box(box, width, height, where)
            boxes.append(box)
            classes.append(index[name])
        records.append(_record(image, width, height, boxes, classes))
    return DetectionData(records, names)


def _parse_voc(file: str, image_dir: str):
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
    if not name or not os.path.isfile(image):
        raise DataError(f"{file}:1: image file {name!r} not found in {image_dir}")
    objects = []
    for obj, line in zip(root.findall("object"), lines):
        where = f"{file}:{line}"
        box = obj.find("bndbox")
        if box is None:
            raise DataError(f"{where}: <object> without <bndbox>")
        # VOC boxes are 1-based inclusive pixel indices: xmin=1 is the first column, xmax=W the last.
        coords = [number(box, tag, where) for tag in ("xmin", "ymin", "xmax", "ymax")]
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
def read_yolo(path: str, class_names=None) -> DetectionData:
    """YOLO: `images/` + `labels/` (one `<stem>.txt` per image: `class cx cy w h`, normalised) + `classes.txt`."""
    from PIL import Image

    image_dir = os.path.join(path, "images") if os.path.isdir(os.path.join(path, "images")) else path
    label_dir = os.path.join(path, "labels") if os.path.isdir(os.path.join(path, "labels")) else path
    names_file = os.path.join(path, "classes.txt")
    if class_names is None:
        if not os.path.isfile(names_file):
            raise DataError(f"{path}: YOLO data needs a classes.txt (one class name per line) or class_names=")
        with open(names_file) as f:
            class_names = [line.strip() for line in f if line.strip()]
    names = list(class_names)
    images = sorted(n for n in os.listdir(image_dir) if n.lower().endswith(IMAGE_EXTENSIONS))
    stems = {os.path.splitext(n)[0] for n in images}
    for label in sorted(os.listdir(label_dir)):
        if label.endswith(".txt") and label != "classes.txt" and os.path.splitext(label)[0] not in stems:
            raise DataError(f"{os.path.join(label_dir, label)}:1: no image for this label file in {image_dir}")
    records = []
    for name in images:
        image = os.path.join(image_dir, name)
        with Image.open(image) as im:
            width, height = im.size
        label = os.path.join(label_dir, os.path.splitext(name)[0] + ".txt")
        boxes, classes = [], []
        if os.path.isfile(label):
            with open(label) as f:
                for number, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    where = f"{label}:{number}"
                    parts = line.split()
                    try:
                        cls, cx, cy, w, h = int(parts[0]), *(float(v) for v in parts[1:5])
                        if len(parts) != 5:
                            raise ValueError
                    except (ValueError, IndexError):
                        raise DataError(f"{where}: expected 'class cx cy w h'. Received: {line.strip()!r}") from None
                    if not 0 <= cls < len(names):
                        raise DataError(f"{where}: unknown class id {cls} (classes.txt lists {len(names)})")
                    if min(cx - w / 2, cy - h / 2) < -1e-3 or max(cx + w / 2, cy + h / 2) > 1 + 1e-3 or w <= 0 or h <= 0:
                        raise DataError(f"{where}: box {[cx, cy, w, h]} lies outside the image (normalised 0..1)")
                    box = [(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height]
                    boxes.append(np.clip(box, 0, [width, height, width, height]).tolist())
                    classes.append(cls)
        records.append(_record(image, width, height, boxes, classes))
    return DetectionData(records, names)


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
