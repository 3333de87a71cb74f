from fractions import Fraction

import pytest
import skimage.data

from nsfw_mobilenet.core import configs
from nsfw_mobilenet.studies import architecture_tables
from nsfw_mobilenet.training import models

# Table 3.3, the 11 bneck rows of MobileNetV3-Small (stem and last stage excluded).
TABLE_3_3_EXPANSION = [16, 72, 88, 96, 240, 240, 120, 144, 288, 576, 576]
TABLE_3_3_SQUEEZE_EXCITE = [True, False, False, True, True, True, True, True, True, True, True]
TABLE_3_3_NON_LINEARITY = ["ReLU"] * 3 + ["Hard Swish"] * 8
TABLE_3_3_STRIDE = [2, 2, 1, 2, 1, 1, 1, 1, 2, 1, 1]
TABLE_3_2_BLOCKS = (["Block 1", "Block 2", "Block 3", "Block 2", "Block 3", "Block 3", "Block 2"] + ["Block 3"] * 3
                    + ["Conv2D + Block 1", "Block 3", "Block 3", "Block 2", "Block 3", "Block 3", "Conv2D + Block 1"])


def test_table_3_5_parameters_match_the_thesis_exactly_and_keras2_recount_gives_its_layers():
    thesis = configs.thesis_reference()["table_3_5"]
    table = architecture_tables.parameter_table().set_index("backbone")
    for name, row in thesis.items():
        assert table.loc[name, "parameters"] == row["parameters"]
        assert table.loc[name, "thesis_layers"] == row["layers"]


def test_only_v3_has_fewer_keras3_layers_because_hard_swish_is_one_layer_now():
    table = architecture_tables.parameter_table().set_index("backbone")
    for name in ("mobilenet_v1", "mobilenet_v2"):
        assert table.loc[name, "keras3_layers"] == table.loc[name, "thesis_layers"]
    for name in ("mobilenet_v3_small", "mobilenet_v3_large"):
        assert table.loc[name, "keras3_layers"] < table.loc[name, "thesis_layers"]


def test_v3_small_block_table_has_the_11_bneck_rows_of_table_3_3():
    blocks = architecture_tables.block_table("mobilenet_v3_small").dropna(subset=["expansion"])
    assert blocks["expansion"].tolist() == TABLE_3_3_EXPANSION
    assert blocks["squeeze_excite"].tolist() == TABLE_3_3_SQUEEZE_EXCITE
    assert blocks["non_linearity"].tolist() == TABLE_3_3_NON_LINEARITY
    assert blocks["stride"].tolist() == TABLE_3_3_STRIDE
    assert blocks["input_shape"].iloc[0] == "112x112x16" and blocks["output_shape"].iloc[-1] == "7x7x96"


def test_v3_small_stem_outputs_16_channels_not_the_3_printed_in_table_3_3():
    stem = architecture_tables.block_table("mobilenet_v3_small").query("name == 'conv'").iloc[0]
    assert (stem["input_shape"], stem["output_shape"], stem["stride"]) == ("224x224x3", "112x112x16", 2)
    assert stem["non_linearity"] == "Hard Swish"


def test_v2_blocks_carry_the_block_1_2_3_names_of_table_3_2():
    blocks = architecture_tables.block_table("mobilenet_v2").dropna(subset=["expansion"])
    assert blocks["layer"].tolist() == TABLE_3_2_BLOCKS


def test_equation_3_6_ratio_is_one_over_n_plus_one_over_dk_squared_for_every_separable_pair():
    pairs = {"mobilenet_v1": 13, "mobilenet_v2": 17, "mobilenet_v3_small": 11, "mobilenet_v3_large": 15}
    for name, count in pairs.items():
        table = architecture_tables.separable_cost_table(name)
        assert len(table) == count
        for row in table.itertuples():
            assert row.standard_cost == row.D_K**2 * row.M * row.N * row.D_F**2
            assert Fraction(row.separable_cost, row.standard_cost) == Fraction(1, row.N) + Fraction(1, row.D_K**2)


@pytest.mark.parametrize("backbone", ["mobilenet_v1", "mobilenet_v2", "mobilenet_v3_small"])
def test_offline_imagenet_weights_see_a_cat_in_chelsea_and_espresso_in_coffee(backbone, offline_weights_dir):
    if not (offline_weights_dir / architecture_tables.CLASS_INDEX_FILE).exists():
        pytest.skip("needs the ImageNet class index beside the offline weights")
    model = models.build_backbone(backbone, "imagenet", weights_dir=offline_weights_dir)
    images = {"chelsea": skimage.data.chelsea(), "coffee": skimage.data.coffee()}
    top = architecture_tables.imagenet_top_k(model, backbone, images, k=3, weights_dir=offline_weights_dir)
    first = top[top["rank"] == 1].set_index("image")["imagenet_class"]
    assert first["chelsea"] in {"Egyptian_cat", "tabby", "tiger_cat"}
    assert first["coffee"] == "espresso"
    assert len(top) == 6
