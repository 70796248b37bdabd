"""`toolkit inspect ...`: layer statistics, visualisations and adversarial robustness of a trained model.

    toolkit inspect stats runs/image-classifier/<run> --data fashion-mnist:test --limit 2000
    toolkit inspect occlusion model.keras --data fashion-mnist:test --index 0 --patch 6 --stride 2
    toolkit inspect gradcam|filters|maximize|reconstruct|fgsm MODEL ...

MODEL is a `.keras` file or a run directory (holding model.keras). Data (read by `load_image_dataset`, resized to
the model's input): a class-per-folder tree or a flat folder (unlabelled), "tfds:NAME[:SPLIT]", a `.npz` with `x`
(and `y`), a `.npy`, or a sample: "fashion-mnist[:train|test]", "digits".
Heavy imports (TensorFlow) happen inside `main`, so `toolkit --help` stays fast.
"""

from __future__ import annotations

import json
import os

HELP = "inspect a model: layer statistics (dead/blocked filters), occlusion, Grad-CAM, filters, ..., FGSM"
ACTIONS = ("stats", "occlusion", "gradcam", "filters", "maximize", "reconstruct", "fgsm")


def add_arguments(parser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="{" + ",".join(ACTIONS) + "}")

    def action(name, help_text, data=False, image=False):
        p = actions.add_parser(name, help=help_text, description=help_text)
        p.add_argument("model", help="a .keras file or a run directory holding model.keras")
        p.add_argument("-o", "--output", default="inspect-output", help="folder for PNG/JSON outputs")
        if data or image:
            p.add_argument("--data", required=data,
                           help="folder, tfds:NAME, .npz (x, y) or .npy (x), fashion-mnist[:split], digits")
            p.add_argument("--limit", type=int, default=None, help="use at most N examples")
        if image:
            p.add_argument("--image", help="an image file (else --data with --index)")
            p.add_argument("--index", type=int, default=0, help="which example of --data")
        return p

    p = action("stats", "per-channel min/max/mean/std/zeros of conv and dense layers; dead/blocked/healthy",
               data=True)
    p.add_argument("--layers", default="all", help="comma list of layer names (or backbone/name), or all")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--dead-threshold", type=float, default=0.01, help="dead when max(|min|,|max|) <= this")
    p.add_argument("--blocked-threshold", type=float, default=0.0, help="blocked when max < this")
    p.add_argument("--post-activation", action="store_true",
                   help="tap each layer's own output (after a fused activation; before BatchNormalization); "
                        "default: what the ReLU sees (a fused activation's linear part, the BN output)")
    p.add_argument("--heatmap-channels", type=int, default=1024,
                   help="channels per layer the heatmap shows (the JSON has all; the title says what is left out)")
    p.add_argument("--per-channel", action="store_true", help="also print one line per channel")
    p = action("occlusion", "occlusion sensitivity map (drop of the class probability)", image=True)
    p.add_argument("--class", dest="class_index", default=None,
                   help="class id or name (default: predicted)")
    p.add_argument("--patch", type=int, default=8, help="occluder size in pixels")
    p.add_argument("--stride", type=int, default=4, help="occluder step in pixels")
    p = action("gradcam", "Grad-CAM heatmap for a class", image=True)
    p.add_argument("--class", dest="class_index", default=None, help="class id or name (default: predicted)")
    p.add_argument("--layer", default=None, help="top-level 4-D layer (default: the last, e.g. the backbone)")
    p = action("filters", "first conv layer's filters as an image grid")
    p.add_argument("--layer", default=None, help="conv layer (default: the first)")
    p = action("maximize", "gradient-ascent visualisation of a channel or class; top-k dataset images", data=False,
               image=False)
    p.add_argument("--data", help="with --layer/--channel: also save the top-k maximally activating images")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--layer", help="layer name (or backbone/name)")
    p.add_argument("--channel", type=int, help="channel of --layer")
    p.add_argument("--class", dest="class_index", default=None, help="maximise a class (id or name) instead")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--step-size", type=float, default=2.0, help="pixels per step (normalised gradient)")
    p.add_argument("--top-k", type=int, default=9)
    p = action("reconstruct", "reconstruct an image from a layer's code by optimising the input", image=True)
    p.add_argument("--layer", required=True, help="layer whose code to invert")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--learning-rate", type=float, default=2.0)
    p.add_argument("--tv-weight", type=float, default=1e-3, help="lambda of the total-variation prior")
    p = action("fgsm", "accuracy vs epsilon under FGSM (and iterated FGSM)", data=True)
    p.add_argument("--epsilons", default="0,1,2,4,8,16", help="comma list, in input units (pixels 0-255)")
    p.add_argument("--method", default="fgsm", choices=("fgsm", "iterated", "both"))
    p.add_argument("--steps", type=int, default=10, help="iterations of the iterated form")


def load_data(spec: str, model, limit: int | None = None, batch_size: int = 256):
    """`--data` -> `(x, y or None)` arrays shaped for `model`: any source `load_image_dataset` reads (a folder,
    flat or class-per-folder, "tfds:NAME", a `.npz` / `.npy` file, "fashion-mnist[:train|test]" (default test),
    "digits"), resized and converted to the model's input; with `limit`, only the first batches are read."""
    import numpy as np

    from toolkit.data import load_image_dataset

    shape = tuple(model.inputs[0].shape[1:])
    data = load_image_dataset(spec, image_size=shape[:2] if None not in shape[:2] else None, channels=shape[-1],
                              validation_split=0.0, batch_size=batch_size, shuffle=False, require_labels=False,
                              split="test")
    batches = data.train if limit is None else data.train.take(max(1, -(-limit // batch_size)))
    xs, ys = [], []
    for batch in batches:
        xs.append(batch[0].numpy() if data.labelled else batch.numpy())
        ys.append(batch[1].numpy() if data.labelled else None)
    x, y = np.concatenate(xs), (np.concatenate(ys) if data.labelled else None)
    if limit is not None:
        x, y = x[:limit], (None if y is None else y[:limit])
    if tuple(x.shape[1:]) != shape and None not in shape:
        raise ValueError(f"data {spec!r} has examples of shape {tuple(x.shape[1:])}; the model takes {shape}")
    return x.astype("float32"), y


def _image(args, model):
    if args.image:
        import tensorflow as tf

        from toolkit.data import read_image_file

        shape = tuple(model.inputs[0].shape[1:])
        image = read_image_file(args.image, channels=shape[-1])
        return tf.image.resize(image.astype("float32"), shape[:2]).numpy()
    if not args.data:
        raise ValueError("give --image FILE or --data DATA (with --index)")
    x, _ = load_data(args.data, model)
    if not 0 <= args.index < len(x):
        raise ValueError(f"--index {args.index} is out of range for {len(x)} examples")
    return x[args.index]


def class_names_of(model_path: str):
    """The class names of a run directory's `info.json` (beside a `.keras` file too), else None."""
    folder = model_path if os.path.isdir(model_path) else os.path.dirname(os.path.abspath(model_path))
    info_file = os.path.join(folder, "info.json")
    if not os.path.isfile(info_file):
        return None
    try:
        with open(info_file) as f:
            names = json.load(f).get("class_names")
    except (OSError, ValueError, AttributeError):
        return None
    return [str(n) for n in names] if isinstance(names, list) and names else None


def _class_index(value, names):
    """`--class` as given (an id, or one of the run's class names) -> the id (None stays None)."""
    if value is None:
        return None
    text = str(value).strip()
    if text.lstrip("-").isascii() and text.lstrip("-").isdigit():
        return int(text)
    if names and text in names:
        return names.index(text)
    known = f"; the model's classes: {names}" if names else " (this model has no class names: give an id)"
    raise ValueError(f"--class {text!r} is not a class id or name{known}")


def main(args) -> int:
    from toolkit import inspect
    from toolkit.inspect.common import last_feature_layer
    from toolkit.inspect.plots import class_label, save_grid, save_heatmap
    from toolkit.inspect.statistics import layer_statistics

    model = inspect.load_model(args.model)
    names = class_names_of(args.model)
    if hasattr(args, "class_index"):
        args.class_index = _class_index(args.class_index, names)
    out = args.output
    os.makedirs(out, exist_ok=True)
    written = []
    if args.action == "stats":
        x, _ = load_data(args.data, model, args.limit)
        report = layer_statistics(model, x, layers=args.layers, batch_size=args.batch_size,
                                  dead_threshold=args.dead_threshold, blocked_threshold=args.blocked_threshold,
                                  preactivation=not args.post_activation)
        print(report.table(per_channel=args.per_channel))
        written += [report.save_json(os.path.join(out, "layer_statistics.json")),
                    report.plot(os.path.join(out, "layer_statistics.png"), max_channels=args.heatmap_channels)]
        note = report.heatmap_note(args.heatmap_channels)
        if note:
            print(f"note: {note}: {written[0]} (raise --heatmap-channels to plot more)")
    elif args.action == "occlusion":
        image = _image(args, model)
        result = inspect.occlusion_map(model, image, args.class_index, args.patch, args.stride)
        save_heatmap(image, result["map"], os.path.join(out, "occlusion.png"),
                     title=f"occlusion: drop of class {class_label(result['class_index'], names)}")
        print(f"class {class_label(result['class_index'], names)}: baseline probability {result['baseline']:.4f}, "
              f"largest drop {result['grid'].max():.4f}")
        written.append(os.path.join(out, "occlusion.png"))
    elif args.action == "gradcam":
        image = _image(args, model)
        result = inspect.grad_cam(model, image, args.class_index, args.layer)
        save_heatmap(image, result["map"], os.path.join(out, "gradcam.png"),
                     title=f"Grad-CAM class {class_label(result['class_index'], names)} at "
                           f"{args.layer or last_feature_layer(model)}")
        print(f"class {class_label(result['class_index'], names)}: map {result['map'].shape}")
        written.append(os.path.join(out, "gradcam.png"))
    elif args.action == "filters":
        filters = inspect.first_layer_filters(model, os.path.join(out, "filters.png"), args.layer)
        print(f"{len(filters)} filters of shape {filters.shape[1:]}")
        written.append(os.path.join(out, "filters.png"))
    elif args.action == "maximize":
        if args.class_index is None and (args.layer is None or args.channel is None):
            raise ValueError("give --class K, or --layer NAME and --channel C")
        result = inspect.gradient_ascent(model, args.layer, args.channel, args.class_index, args.steps,
                                         args.step_size)
        target = (f"class {class_label(args.class_index, names)}" if args.class_index is not None
                  else f"{args.layer}[{args.channel}]")
        save_grid([result["image"]], os.path.join(out, "maximize.png"), title=f"gradient ascent: {target}", scale=3.0)
        print(f"objective {result['objective'][0]:.4f} -> {result['objective'][-1]:.4f}")
        written.append(os.path.join(out, "maximize.png"))
        if args.data and args.layer is not None:
            x, _ = load_data(args.data, model, args.limit)
            top = inspect.top_activating(model, x, args.layer, args.channel, args.top_k,
                                         path=os.path.join(out, "top_images.png"))
            print(f"top-{args.top_k} images: {top['indices'].tolist()}")
            written.append(os.path.join(out, "top_images.png"))
    elif args.action == "reconstruct":
        result = inspect.reconstruct(model, _image(args, model), args.layer, args.steps, args.learning_rate,
                                     args.tv_weight, path=os.path.join(out, "reconstruction.png"))
        print(f"loss {result['loss'][0]:.4f} -> {result['loss'][-1]:.4f}; code error {result['code_error']:.4f}")
        written.append(os.path.join(out, "reconstruction.png"))
    else:
        x, y = load_data(args.data, model, args.limit)
        if y is None:
            raise ValueError(f"fgsm needs labelled data; {args.data!r} has no labels")
        epsilons = [float(e) for e in args.epsilons.split(",")]
        result = inspect.robustness_curve(model, (x, y), epsilons, args.method, args.steps,
                                          path=os.path.join(out, "robustness.png"))
        print(result["table"])
        with open(os.path.join(out, "robustness.json"), "w") as f:
            json.dump({k: v for k, v in result.items() if k != "table"}, f, indent=1)
        written += [os.path.join(out, "robustness.png"), os.path.join(out, "robustness.json")]
    for path in written:
        print(f"wrote {path}")
    return 0
