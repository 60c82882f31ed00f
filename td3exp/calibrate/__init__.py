"""``python -m td3exp.calibrate``: how well the gate, judged on a run cut at an early horizon, predicts the run's
eventual outcome (a pre-registered label from the whole run), against early-return pruning and trivial gates."""
