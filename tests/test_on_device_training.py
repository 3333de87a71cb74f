"""On-device training specification: one `.tflite` with train/infer/save/restore signatures,
run through LiteRT's signature runners as the app would, updates the classifier's head from reviewed images.
The tiny stand-in classifier keeps it to seconds."""

import numpy as np
import pytest

from nsfw_mobilenet.app import on_device_training

LEARNING_RATE = 0.5  # the tiny classifier's 16 features are small; V3-Small's 1024 take the module's default
STEPS = 6


@pytest.fixture(scope="module")
def trainable_tflite(classifier, tmp_path_factory):
    import tiny_classifier

    path = tmp_path_factory.mktemp("on_device_training") / "trainable.tflite"
    return on_device_training.export_trainable(classifier, path, tiny_classifier.PIXEL_SCALING)


@pytest.fixture(scope="module")
def reviewed(classifier):
    """Eight images the reviewers overruled: each verdict is the class the classifier did not decide."""
    import tiny_classifier

    images, _ = tiny_classifier.images(8, seed=5)
    decided = classifier.predict(tiny_classifier.preprocess(images), verbose=0).argmax(1)
    return images, 1 - decided


def operators(path):
    """The op names of every signature of a `.tflite` (custom ops, such as Flex ones, by their custom name)."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(path.read_bytes(), 0)
    builtin_names = {code: name for name, code in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
    names = set()
    for graph in (model.Subgraphs(index) for index in range(model.SubgraphsLength())):
        for operator in (graph.Operators(index) for index in range(graph.OperatorsLength())):
            code = model.OperatorCodes(operator.OpcodeIndex())
            builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            names.add(code.CustomCode().decode() if code.CustomCode() else builtin_names[builtin])
    return names


def trained(path, images, verdicts, steps=STEPS):
    trainer = on_device_training.HeadTrainer(path)
    losses = [trainer.train(images, verdicts, LEARNING_RATE) for _ in range(steps)]
    return trainer, losses


def test_the_tflite_has_the_four_signatures_and_builtin_ops_only_so_ai_edge_litert_runs_it_without_flex(
        trainable_tflite):
    from ai_edge_litert.interpreter import Interpreter

    assert set(Interpreter(model_path=str(trainable_tflite)).get_signature_list()) == set(on_device_training.SIGNATURES)
    ops = operators(trainable_tflite)
    assert {"VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE"} <= ops
    assert not [name for name in ops if name.startswith("Flex") or not name.isupper()]


def test_before_any_training_the_tflite_decides_as_the_keras_classifier(trainable_tflite, classifier, reviewed):
    import tiny_classifier

    images, _ = reviewed
    keras_probabilities = classifier.predict(tiny_classifier.preprocess(images), verbose=0)
    np.testing.assert_allclose(on_device_training.HeadTrainer(trainable_tflite).infer(images), keras_probabilities,
                               atol=1e-5)


def test_the_loss_falls_over_a_few_train_calls_on_reviewed_images(trainable_tflite, reviewed):
    _, losses = trained(trainable_tflite, *reviewed)
    assert all(later < earlier for earlier, later in zip(losses, losses[1:]))
    assert losses[-1] < losses[0] / 2


def test_training_turns_the_decisions_on_reviewed_images_to_the_reviewers_verdicts(trainable_tflite, reviewed):
    images, verdicts = reviewed
    before = on_device_training.HeadTrainer(trainable_tflite).infer(images)
    trainer, _ = trained(trainable_tflite, images, verdicts)
    after = trainer.infer(images)
    rows = np.arange(len(verdicts))
    assert (before.argmax(1) != verdicts).all() and (after.argmax(1) == verdicts).all()
    assert (after[rows, verdicts] > before[rows, verdicts]).all()


def test_training_changes_only_the_heads_kernel_and_bias_which_save_returns(trainable_tflite, classifier, reviewed):
    trainer, _ = trained(trainable_tflite, *reviewed, steps=1)
    weights = trainer.head_weights()
    dense = classifier.layers[-1]
    assert {name: value.shape for name, value in weights.items()} == {"kernel": dense.kernel.shape,
                                                                      "bias": dense.bias.shape}
    assert not np.allclose(weights["kernel"], dense.kernel.numpy())


def test_head_weights_saved_then_restored_into_a_fresh_interpreter_give_the_same_outputs(trainable_tflite, reviewed,
                                                                                           tmp_path):
    images, verdicts = reviewed
    trainer, _ = trained(trainable_tflite, images, verdicts)
    saved = trainer.save(tmp_path / "head.npz")
    fresh = on_device_training.HeadTrainer(trainable_tflite)
    assert not np.allclose(fresh.infer(images), trainer.infer(images))
    fresh.restore(saved)
    np.testing.assert_array_equal(fresh.infer(images), trainer.infer(images))


def test_restoring_weights_of_another_shape_is_refused_naming_the_file(trainable_tflite, tmp_path):
    other = tmp_path / "other_head.npz"
    np.savez(other, kernel=np.zeros((1024, 2), np.float32), bias=np.zeros(2, np.float32))
    with pytest.raises(on_device_training.HeadWeightsMismatch, match=r"other_head\.npz: head weights .* do not fit"):
        on_device_training.HeadTrainer(trainable_tflite).restore(other)


def test_a_classifier_without_a_softmax_dense_on_top_is_refused():
    import keras

    inputs = keras.Input((8, 8, 3))
    logits = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(inputs))
    with pytest.raises(on_device_training.UnsupportedClassifier, match="is not a softmax Dense"):
        on_device_training.trainable_module(keras.Model(inputs, logits))


def test_the_file_converts_with_builtin_ops_also_under_op_determinism_which_training_turns_on(classifier, tmp_path):
    import tensorflow as tf
    import tiny_classifier

    tf.config.experimental.enable_op_determinism()  # process-wide, as `training.train` leaves it
    path = on_device_training.export_trainable(classifier, tmp_path / "t.tflite", tiny_classifier.PIXEL_SCALING)
    assert on_device_training.HeadTrainer(path).infer(tiny_classifier.images(2)[0].astype("float32")).shape == (2, 2)
