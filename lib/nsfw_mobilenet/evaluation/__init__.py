"""How good a model is and how sure we are: listing 4.8's safety metrics, calibration, the operating point,
Grad-CAM/SHAP/LIME explanations, intervals and paired tests, a run's results and the thesis comparison, and the
figures. Imports `core` and `io` only."""
