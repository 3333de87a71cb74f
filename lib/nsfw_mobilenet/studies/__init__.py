"""The thesis's studies, one module each, named after what it answers: the architecture tables (§3), which SGD
learning rate the thesis ran, whether its V3 softmax head learns, the augmentation order, the backbone
selection (§4.2.5), the five-class datasets (§4.4) and the cross-dataset test (§5.1). The notebooks call them."""
