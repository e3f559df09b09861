"""The Kascade API (``kascade.io/v1alpha1``) as pydantic models; CRDs are generated from them."""
