from ftkit.evaluation.overfitting import diagnose


def record(epoch, train_loss, val_loss, train_acc, val_acc):
    return {"epoch": epoch, "step": epoch * 10, "train": {"loss": train_loss, "accuracy": train_acc},
            "validation": {"loss": val_loss, "accuracy": val_acc}}


def test_rising_validation_loss_is_overfitting():
    history = [record(1, 0.6, 0.55, 0.7, 0.72), record(2, 0.4, 0.50, 0.85, 0.78),
               record(3, 0.2, 0.56, 0.95, 0.77), record(4, 0.1, 0.70, 0.99, 0.76)]
    out = diagnose(history, "accuracy", stopped_early=True)
    assert out["validation_loss_rising_for"] == 2
    assert out["best_epoch"] == 2 and out["best"]["gap"] == 0.07
    assert out["verdict"].startswith("overfitting: validation loss rose for 2 evaluations")


def test_large_gap_still_improving_and_healthy():
    gap = [record(1, 0.3, 0.5, 0.97, 0.80)]
    assert "points better than validation" in diagnose(gap, "accuracy", False)["verdict"]
    improving = [record(1, 0.6, 0.6, 0.70, 0.69), record(2, 0.5, 0.5, 0.78, 0.77)]
    assert diagnose(improving, "accuracy", False)["verdict"].startswith("still improving")
    exactly_ten = [record(1, 0.1, 0.3, 1.0, 0.9), record(2, 0.08, 0.33, 1.0, 0.9)]  # 1.0 - 0.9 < 0.1 in floats
    assert "10.0 points better than validation" in diagnose(exactly_ten, "accuracy", True)["verdict"]
    mild = [record(1, 0.3, 0.4, 0.90, 0.84), record(2, 0.28, 0.41, 0.91, 0.84)]
    assert diagnose(mild, "accuracy", True)["verdict"].startswith("a mild gap: at the best epoch training accuracy is 6.0")
    healthy = [record(1, 0.5, 0.5, 0.80, 0.79), record(2, 0.45, 0.49, 0.81, 0.78)]
    assert diagnose(healthy, "accuracy", True)["verdict"].startswith("no sign of overfitting")


def test_no_validation_is_said_plainly():
    assert diagnose([], "accuracy", False)["verdict"].startswith("not measured")
