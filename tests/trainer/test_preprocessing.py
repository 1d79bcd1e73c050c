"""preprocessing_fn's label distribution: FER+ vote shares where an example has them, one-hot elsewhere."""
import numpy as np
import tensorflow as tf

from trainer.preprocessing import label_shares


def test_examples_without_shares_get_the_one_hot_of_their_label():
    label = tf.constant([3, 1, 6], tf.int64)
    # as TFT hands the optional feature over: a sparse [B, 7] list, absent for rows 0 and 2
    shares = tf.sparse.SparseTensor(indices=[[1, c] for c in range(7)], values=[0.0, 0.5, 0.0, 0.25, 0.25, 0.0, 0.0],
                                    dense_shape=[3, 7])
    result = label_shares(label, shares).numpy()
    np.testing.assert_allclose(result[0], np.eye(7)[3])
    np.testing.assert_allclose(result[1], [0.0, 0.5, 0.0, 0.25, 0.25, 0.0, 0.0])
    np.testing.assert_allclose(result[2], np.eye(7)[6])


def test_a_batch_where_no_example_has_shares():
    label = tf.constant([0, 5], tf.int64)
    empty = tf.sparse.SparseTensor(indices=tf.zeros([0, 2], tf.int64), values=tf.zeros([0]), dense_shape=[2, 0])
    np.testing.assert_allclose(label_shares(label, empty).numpy(), np.eye(7)[[0, 5]])
    np.testing.assert_allclose(label_shares(label, None).numpy(), np.eye(7)[[0, 5]])
