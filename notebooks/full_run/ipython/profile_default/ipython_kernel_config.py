# Kernel profile for full notebook runs (`make figures`): native writes to stderr (TensorFlow's start-up lines,
# which TF_CPP_MIN_LOG_LEVEL does not stop) go to the terminal instead of into the notebooks' stored outputs.
c.IPKernelApp.capture_fd_output = False  # noqa: F821 (IPython's config object)
