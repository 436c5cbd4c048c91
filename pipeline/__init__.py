"""relforge's Kubeflow Pipelines definition: thin components over ``relforge.steps``."""
