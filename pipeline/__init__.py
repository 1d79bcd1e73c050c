"""The Deep-Emotion TFX pipeline: settings, one pure `create_pipeline(...)`, its local and Kubeflow
variants and the Kubeflow container command. On components/, trainer/ and contract/."""
