"""Analysis of trained policies: token credit by branching rollouts (`credit`) and the HTML run report (`report`)."""
