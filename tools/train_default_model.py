#!/usr/bin/env python3
"""Train segscope's default model: a small DeepLabv3+ on procedural street/landscape scenes.

Writes (from the repository root):
  weights/deeplabv3plus_scenes.onnx   TorchScript-exported ONNX (opset 17) with metadata_props
                                      classes, palette, mean, std, input_size, miou, training
  weights/deeplabv3plus_scenes.json   classes, palette, held-out metrics, sizes, training settings
  weights/samples/*.png (+ labels/)   demo scenes incl. the photo-like street.png, with ground truth
  weights/heldout/*.png (+ labels/)   16 held-out scenes for segscope's own test
  big/default_model.pt                checkpoint (git-ignored), so the export can be redone
  big/scenes/*.npy                    cached training scenes (git-ignored)

Labels are 8-bit grayscale PNGs whose pixel value is the class index (tools/scenes.py CLASSES).

How to run (from the repository root):

  1. train (Debian's torch 1.13 CPU; the defaults are the shipped model's settings, 1870 steps:
     about 10 min on 2 idle cores, much longer on busy ones, where OMP_WAIT_POLICY=PASSIVE helps),
     evaluate, export, write samples:
       OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 tools/train_default_model.py
     or only redo the evaluation/export/samples from big/default_model.pt:
       /usr/bin/python3 tools/train_default_model.py --export-only
  2. score the exported ONNX on the committed weights/heldout PNGs with onnxruntime
     (torch 2.x venv of tools/requirements-dynamo.txt plus onnxruntime, Pillow) and record it in the JSON:
       .venv/bin/python tools/train_default_model.py --verify-onnx

mIoU: one confusion matrix over all pixels of a set (accumulated over images, not averaged per
image); IoU_c = TP / (TP + FP + FN); the mean is over classes present in ground truth or prediction.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_fixtures import ResNet, IntermediateLayerGetter, DeepLabHeadV3Plus, DeepLabV3Plus  # noqa: E402
from scenes import CLASSES, PALETTE, make_scene, make_street_scene  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WEIGHTS = os.path.join(ROOT, "weights")
ONNX_PATH = os.path.join(WEIGHTS, "deeplabv3plus_scenes.onnx")
JSON_PATH = os.path.join(WEIGHTS, "deeplabv3plus_scenes.json")
CKPT_PATH = os.path.join(ROOT, "big", "default_model.pt")
CACHE_DIR = os.path.join(ROOT, "big", "scenes")

SEED = 6
SIZE = 257                     # scenes are generated (and evaluated) at 257x257
MEAN = (0.485, 0.456, 0.406)   # segscope's default ImageNet normalisation
STD = (0.229, 0.224, 0.225)
# disjoint scene-seed ranges: training [0, n), held-out [1e6, 1e6 + n), samples [2e6, ...)
HELDOUT_BASE = 1_000_000
SAMPLE_BASE = 2_000_000
HELDOUT_FILES = 16
NUM_CLASSES = len(CLASSES)

# architecture: ResNet-26-like Bottleneck backbone at 1/4 width, OS16, ASPP 128, decoder 96 channels
LAYERS = (2, 2, 2, 2)
PLANES = (16, 32, 64, 128)     # layer outputs 64, 128, 256, 512 channels
STEM = 32
ASPP_CHANNELS = 128
DECODER_CHANNELS = 96

MIOU_DEFINITION = ("confusion matrix over all pixels of the set (accumulated over images, not averaged per "
                   "image); IoU_c = TP/(TP+FP+FN); mIoU = mean over classes present in ground truth or prediction")


def build_model() -> DeepLabV3Plus:
    resnet = ResNet(LAYERS, PLANES, STEM, replace_stride_with_dilation=(False, False, True))
    backbone = IntermediateLayerGetter(resnet, {"layer4": "out", "layer1": "low_level"})
    head = DeepLabHeadV3Plus(resnet.out_channels, resnet.low_level_channels, NUM_CLASSES,
                             aspp_dilate=(6, 12, 18), aspp_channels=ASPP_CHANNELS, low_level_out=48,
                             decoder_channels=DECODER_CHANNELS)
    return DeepLabV3Plus(backbone, head)


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------


def generate(seeds: Sequence[int]) -> Tuple[np.ndarray, np.ndarray]:
    """Scenes for the given seeds (one numpy Generator per scene, so any scene can be regenerated alone)."""
    imgs = np.empty((len(seeds), SIZE, SIZE, 3), np.uint8)
    masks = np.empty((len(seeds), SIZE, SIZE), np.uint8)
    for i, s in enumerate(seeds):
        imgs[i], masks[i] = make_scene(np.random.default_rng(s), SIZE, SIZE)
    return imgs, masks


def cached_scenes(first: int, n: int) -> Tuple[np.ndarray, np.ndarray]:
    """generate(range(first, first + n)), cached in big/scenes/ (generation takes minutes)."""
    stem = os.path.join(CACHE_DIR, f"{first}_{n}_{SIZE}")
    if os.path.exists(stem + "_masks.npy"):
        return np.load(stem + "_imgs.npy"), np.load(stem + "_masks.npy")
    t0 = time.time()
    imgs, masks = generate(range(first, first + n))
    os.makedirs(CACHE_DIR, exist_ok=True)
    np.save(stem + "_imgs.npy", imgs)
    np.save(stem + "_masks.npy", masks)
    print(f"generated {n} scenes from seed {first} in {time.time() - t0:.0f} s", flush=True)
    return imgs, masks


def normalise(imgs: np.ndarray) -> np.ndarray:
    """uint8 NHWC RGB -> float32 NCHW: /255 then (x - mean) / std (what segscope does by default)."""
    x = imgs.astype(np.float32) / 255.0
    x = (x - np.asarray(MEAN, np.float32)) / np.asarray(STD, np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def random_batch(imgs: np.ndarray, masks: np.ndarray, idx: np.ndarray, crop: int,
                 rng: np.random.Generator) -> Tuple[torch.Tensor, torch.Tensor]:
    """Random crops with random horizontal flips (scenes are left/right symmetric; not up/down)."""
    xs, ys = [], []
    for i in idx:
        y0, x0 = rng.integers(0, SIZE - crop + 1, 2)
        img, mask = imgs[i, y0:y0 + crop, x0:x0 + crop], masks[i, y0:y0 + crop, x0:x0 + crop]
        if rng.random() < 0.5:
            img, mask = img[:, ::-1], mask[:, ::-1]
        xs.append(img)
        ys.append(mask)
    return torch.from_numpy(normalise(np.stack(xs))), torch.from_numpy(np.stack(ys).astype(np.int64))


def class_weights(masks: np.ndarray) -> torch.Tensor:
    """Square-root median-frequency balancing: small classes (person, car, tree) count more in the
    loss, since mIoU weighs every class equally, without the instability of full inverse frequency."""
    freq = np.bincount(masks.ravel(), minlength=NUM_CLASSES).astype(np.float64)
    freq = np.maximum(freq / freq.sum(), 1e-6)
    return torch.tensor(np.sqrt(np.median(freq) / freq), dtype=torch.float32)


# --------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------


def confusion(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """NUM_CLASSES x NUM_CLASSES counts, rows = ground truth, columns = prediction."""
    return np.bincount(gt.ravel().astype(np.int64) * NUM_CLASSES + pred.ravel(),
                       minlength=NUM_CLASSES ** 2).reshape(NUM_CLASSES, NUM_CLASSES)


def metrics(conf: np.ndarray) -> Dict[str, object]:
    tp = np.diag(conf).astype(np.float64)
    union = conf.sum(0) + conf.sum(1) - tp
    present = union > 0
    iou = np.where(present, tp / np.maximum(union, 1), np.nan)
    return {
        "miou": round(float(np.nanmean(iou)), 4),
        "pixel_accuracy": round(float(tp.sum() / conf.sum()), 4),
        "per_class_iou": {c: (round(float(v), 4) if p else None) for c, v, p in zip(CLASSES, iou, present)},
    }


def predict_torch(model: torch.nn.Module, imgs: np.ndarray, batch: int = 8) -> np.ndarray:
    model.eval()
    preds = []
    with torch.no_grad():
        for i in range(0, len(imgs), batch):
            preds.append(model(torch.from_numpy(normalise(imgs[i:i + batch]))).argmax(1).numpy().astype(np.uint8))
    return np.concatenate(preds)


def evaluate(model: torch.nn.Module, imgs: np.ndarray, masks: np.ndarray) -> Dict[str, object]:
    return metrics(confusion(predict_torch(model, imgs), masks))


def print_metrics(title: str, m: Dict[str, object]) -> None:
    per = "  ".join(f"{c} {v:.3f}" for c, v in m["per_class_iou"].items() if v is not None)
    print(f"{title}: mIoU {m['miou']:.4f}  pixel acc {m['pixel_accuracy']:.4f}\n  {per}", flush=True)


# --------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------


def lr_at(step: int, total: int, base: float, warmup: int) -> float:
    """Linear warm-up, then poly(0.9) decay to zero (DeepLab's schedule)."""
    if step < warmup:
        return base * (step + 1) / warmup
    return base * (1 - (step - warmup) / max(total - warmup, 1)) ** 0.9


def train(args: argparse.Namespace) -> None:
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    imgs, masks = cached_scenes(0, args.scenes)
    val_imgs, val_masks = cached_scenes(HELDOUT_BASE, 48)  # progress check only (subset of the held-out set)
    model = build_model()
    weights = class_weights(masks)
    print("class weights: " + ", ".join(f"{c} {w:.2f}" for c, w in zip(CLASSES, weights.tolist())), flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    steps_per_epoch = len(imgs) // args.batch
    total = steps_per_epoch * args.epochs
    step, t0 = 0, time.time()
    for epoch in range(args.epochs):
        model.train()
        order = rng.permutation(len(imgs))
        loss_sum = 0.0
        for b in range(steps_per_epoch):
            x, y = random_batch(imgs, masks, order[b * args.batch:(b + 1) * args.batch], args.crop, rng)
            for g in opt.param_groups:
                g["lr"] = lr_at(step, total, args.lr, warmup=min(300, total // 10))
            loss = F.cross_entropy(model(x), y, weight=weights)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum += loss.item()
            step += 1
            if step % 50 == 0:
                print(f"  step {step}/{total} loss {loss.item():.4f} {time.time() - t0:.0f} s", flush=True)
        line = f"epoch {epoch + 1}/{args.epochs} loss {loss_sum / steps_per_epoch:.4f} {time.time() - t0:.0f} s"
        if (epoch + 1) % 3 == 0 or epoch + 1 == args.epochs:
            line += f"  val48 mIoU {evaluate(model, val_imgs, val_masks)['miou']:.4f}"
        print(line, flush=True)
    os.makedirs(os.path.dirname(CKPT_PATH), exist_ok=True)
    torch.save({"state_dict": model.state_dict(), "train_seconds": round(time.time() - t0),
                "settings": training_settings(args)}, CKPT_PATH)
    print(f"saved {CKPT_PATH}", flush=True)


def training_settings(args: argparse.Namespace) -> Dict[str, object]:
    return {"scenes": args.scenes, "train_seeds": [0, args.scenes], "epochs": args.epochs, "crop": args.crop,
            "batch": args.batch, "optimizer": f"AdamW lr {args.lr} wd 1e-4, warm-up + poly(0.9)",
            "loss": "cross-entropy, sqrt median-frequency class weights", "augmentation": "random crop, h-flip",
            "seed": SEED, "threads": torch.get_num_threads(), "torch": torch.__version__}


# --------------------------------------------------------------------------
# Export, samples, report
# --------------------------------------------------------------------------


def export_onnx(model: torch.nn.Module, meta: Dict[str, str], doc: str) -> None:
    import onnx

    model.eval()
    x = torch.from_numpy(normalise(generate([SAMPLE_BASE])[0]))
    dyn = {"input": {0: "batch", 2: "height", 3: "width"}, "output": {0: "batch", 2: "height", 3: "width"}}
    kwargs = {"dynamo": False} if int(torch.__version__.split(".")[0]) >= 2 else {}
    torch.onnx.export(model, (x,), ONNX_PATH, export_params=True, opset_version=17, do_constant_folding=True,
                      input_names=["input"], output_names=["output"], dynamic_axes=dyn, **kwargs)
    m = onnx.load(ONNX_PATH)
    del m.metadata_props[:]
    for k, v in meta.items():
        m.metadata_props.add(key=k, value=v)
    m.doc_string = doc
    onnx.checker.check_model(m)
    onnx.save(m, ONNX_PATH)


def save_png(path: str, array: np.ndarray) -> None:
    from PIL import Image

    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array, mode="L" if array.ndim == 2 else "RGB").save(path, optimize=True)


def write_scene_files(folder: str, names: List[str], imgs: np.ndarray, masks: np.ndarray) -> None:
    for name, img, mask in zip(names, imgs, masks):
        save_png(os.path.join(folder, name), img)
        save_png(os.path.join(folder, "labels", name), mask)


def write_samples() -> None:
    """street.png: the photo-like street composite; scene_*.png: the generator's random layouts."""
    street = make_street_scene(np.random.default_rng(SAMPLE_BASE), SIZE, SIZE)
    imgs, masks = generate(range(SAMPLE_BASE + 1, SAMPLE_BASE + 6))
    names = ["street.png"] + [f"scene_{i}.png" for i in range(1, 6)]
    write_scene_files(os.path.join(WEIGHTS, "samples"), names,
                      np.concatenate([street[0][None], imgs]), np.concatenate([street[1][None], masks]))


def heldout_names() -> List[str]:
    return [f"scene_{HELDOUT_BASE + i}.png" for i in range(HELDOUT_FILES)]


def export_all(args: argparse.Namespace) -> None:
    torch.manual_seed(SEED)
    ckpt = torch.load(CKPT_PATH, map_location="cpu")
    model = build_model()
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    settings = ckpt["settings"]

    imgs, masks = cached_scenes(HELDOUT_BASE, args.heldout)
    held = evaluate(model, imgs, masks)
    held.update({"scenes": args.heldout, "seeds": [HELDOUT_BASE, HELDOUT_BASE + args.heldout], "size": f"{SIZE}x{SIZE}",
                 "runtime": f"torch {torch.__version__} (checkpoint)"})
    print_metrics(f"held-out {args.heldout} scenes", held)
    write_scene_files(os.path.join(WEIGHTS, "heldout"), heldout_names(), imgs[:HELDOUT_FILES], masks[:HELDOUT_FILES])
    write_samples()

    training = (f"tools/train_default_model.py: {settings['scenes']} scenes (seeds 0-{settings['scenes'] - 1}), "
                f"{settings['epochs']} epochs, {settings['crop']}px crops, seed {SEED}")
    meta = {"classes": json.dumps(CLASSES), "palette": json.dumps(PALETTE), "mean": json.dumps(list(MEAN)),
            "std": json.dumps(list(STD)), "input_size": f"{SIZE}x{SIZE}", "miou": f"{held['miou']:.4f}",
            "training": training}
    n_params = sum(p.numel() for p in model.parameters())
    doc = (f"DeepLabv3+ (ResNet Bottleneck backbone {LAYERS} x planes {PLANES}, output stride 16, ASPP rates 6/12/18 "
           f"+ image pooling, {ASPP_CHANNELS} channels, 48-channel low-level decoder) with {n_params} parameters, "
           f"trained from scratch on procedural street/landscape scenes ({', '.join(CLASSES)}). Input: RGB/255 "
           f"normalised with ImageNet mean/std, NCHW; output: {NUM_CLASSES} class logits at input resolution. "
           f"Held-out mIoU {held['miou']:.4f} on {args.heldout} scenes at {SIZE}x{SIZE}.")
    export_onnx(model, meta, doc)
    size = os.path.getsize(ONNX_PATH)
    print(f"wrote {ONNX_PATH} ({size / 1e6:.2f} MB, {n_params} parameters)", flush=True)

    report = {
        "model": "weights/deeplabv3plus_scenes.onnx",
        "classes": CLASSES, "palette": PALETTE, "mean": list(MEAN), "std": list(STD), "input_size": f"{SIZE}x{SIZE}",
        "label_format": "8-bit grayscale PNG, pixel value = class index, same file name under labels/",
        "miou_definition": MIOU_DEFINITION,
        "heldout": held,
        "heldout_files": None,  # filled in by --verify-onnx (onnxruntime on the committed PNGs)
        "architecture": {"backbone": f"ResNet Bottleneck layers {list(LAYERS)}, planes {list(PLANES)}, stem {STEM}, "
                                     "layer4 dilated (output stride 16)",
                         "aspp": f"rates 6/12/18 + image pooling, {ASPP_CHANNELS} channels (classifier.aspp.project)",
                         "decoder": f"48-channel low-level projection (classifier.project), "
                                    f"2x 3x3 conv {DECODER_CHANNELS} channels"},
        "parameters": n_params, "onnx_bytes": size,
        "onnx_export": f"torch.onnx.export (TorchScript) torch {torch.__version__}, opset 17, constant folding",
        "training": dict(settings, seconds=ckpt["train_seconds"]),
        "commands": ["OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 tools/train_default_model.py",
                     ".venv/bin/python tools/train_default_model.py --verify-onnx"],
    }
    write_json(report)


def write_json(report: Dict[str, object]) -> None:
    with open(JSON_PATH, "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")


def verify_onnx() -> None:
    """mIoU of the exported ONNX on the committed held-out PNGs, as a reader of those files gets it."""
    import onnxruntime as ort
    from PIL import Image

    sess = ort.InferenceSession(ONNX_PATH, providers=["CPUExecutionProvider"])
    folder = os.path.join(WEIGHTS, "heldout")
    conf = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    names = heldout_names()
    for name in names:
        img = np.asarray(Image.open(os.path.join(folder, name)).convert("RGB"))
        label = np.asarray(Image.open(os.path.join(folder, "labels", name)))
        logits = sess.run(["output"], {"input": normalise(img[None])})[0]
        conf += confusion(logits[0].argmax(0).astype(np.uint8), label)
    result = metrics(conf)
    result.update({"files": f"weights/heldout/*.png ({len(names)})", "runtime": f"onnxruntime {ort.__version__}"})
    print_metrics(f"ONNX on {len(names)} committed held-out files", result)
    with open(JSON_PATH) as f:
        report = json.load(f)
    report["heldout_files"] = result
    write_json(report)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--export-only", action="store_true", help="skip training, export from big/default_model.pt")
    ap.add_argument("--verify-onnx", action="store_true", help="onnxruntime check of the committed held-out files")
    ap.add_argument("--scenes", type=int, default=1500, help="training scenes")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--crop", type=int, default=129)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--heldout", type=int, default=200, help="held-out scenes for the reported mIoU")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.verify_onnx:
        verify_onnx()
        return 0
    if not args.export_only:
        train(args)
    export_all(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
