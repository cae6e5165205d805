"""Analysis of trained policies: token credit by branching rollouts (`credit`), the HTML run report (`report`),
the curves over training steps (`curves`) and the paired-difference figure of a comparison (`paired`)."""
