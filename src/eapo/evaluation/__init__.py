"""Evaluation: avg@k / pass@k / maj@k (`metrics`), seeded sampling (`sampling`), held-out accuracy during and
after training (`heldout`), benchmark suites from a recipe (`suite`) and statistics over seeds (`stats`)."""
