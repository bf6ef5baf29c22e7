"""Knowledge distillation: students, losses, vocabulary trimming, and the stage."""
