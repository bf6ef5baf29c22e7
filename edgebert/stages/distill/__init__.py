"""Knowledge distillation: students, losses and the stage."""
