"""Test-set evaluation as counts, so that shards evaluated by different Ray workers add up exactly to what one
process evaluating the whole test set would report."""

import numpy as np

from training.core.data import normalize_batch


def evaluate_counts(model, images, labels, num_classes, batch_size=256):
    """Per-class correct and total counts and the summed loss over `images`, with the model's plain
    (non-distributed) forward pass."""
    correct = np.zeros(num_classes, dtype=np.int64)
    total = np.zeros(num_classes, dtype=np.int64)
    loss_sum = 0.0
    for start in range(0, len(labels), batch_size):
        x = normalize_batch(images[start:start + batch_size])
        y = labels[start:start + batch_size]
        probs = np.asarray(model(x, training=False), dtype=np.float64)
        loss_sum += float(-np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, 1.0)).sum())
        hits = probs.argmax(axis=1) == y
        np.add.at(correct, y, hits.astype(np.int64))
        np.add.at(total, y, 1)
    return {"correct": correct.tolist(), "total": total.tolist(), "loss_sum": loss_sum}


def combine_counts(parts):
    """Adds up the counts of several shards."""
    correct = np.sum([p["correct"] for p in parts], axis=0)
    total = np.sum([p["total"] for p in parts], axis=0)
    return {"correct": correct.tolist(), "total": total.tolist(), "loss_sum": sum(p["loss_sum"] for p in parts)}


def summarize_counts(counts, class_names):
    """Test accuracy, mean loss and per-class accuracy (None for a class with no test images)."""
    correct, total = np.asarray(counts["correct"]), np.asarray(counts["total"])
    n = int(total.sum())
    return {
        "test_accuracy": float(correct.sum() / n) if n else None,
        "test_loss": float(counts["loss_sum"] / n) if n else None,
        "test_samples": n,
        "per_class_accuracy": {
            name: (float(c / t) if t else None) for name, c, t in zip(class_names, correct, total)
        },
    }
