from fractions import Fraction

import pytest
import skimage.data

from nsfw_mobilenet.core import backbones, configs
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


def test_parameter_table_keeps_the_asked_backbones_in_the_asked_order():
    table = architecture_tables.parameter_table(["mobilenet_v3_small", "mobilenet_v1"])
    assert table["backbone"].tolist() == ["mobilenet_v3_small", "mobilenet_v1"]


def test_table_3_5_beside_thesis_matches_every_parameter_count_and_shows_both_layer_counts():
    side_by_side = architecture_tables.table_3_5_beside_thesis(architecture_tables.parameter_table())
    assert side_by_side["parameters match"].all()
    assert (side_by_side["thesis layers"] == side_by_side["Keras 2 recount"]).all()
    assert (side_by_side["Keras 3 layers"] <= side_by_side["Keras 2 recount"]).all()


def test_keras2_recount_adds_four_layers_per_hard_swish_and_three_per_hard_sigmoid():
    line = architecture_tables.keras2_recount(["mobilenet_v3_small"])
    keras2_layers = configs.thesis_reference()["table_3_5"]["mobilenet_v3_small"]["layers"]
    assert line.startswith(backbones.get_backbone("mobilenet_v3_small").title + ":")
    assert f"= {keras2_layers} Keras 2 layers" in line


def test_block_tables_text_has_a_titled_table_per_backbone():
    text = architecture_tables.block_tables_text(["mobilenet_v1", "mobilenet_v2"])
    assert text.count("conv_dw_1") >= 1 and text.count("block_16") >= 1
    assert text.index("conv_dw_1") < text.index("block_16")


def test_separable_cost_summary_has_one_row_per_backbone_with_equation_3_6_exact():
    summary = architecture_tables.separable_cost_summary(["mobilenet_v1", "mobilenet_v3_small"])
    assert summary["pairs"].tolist() == [13, 11]
    assert summary.loc[0, "D_K"] == [3] and 5 in summary.loc[1, "D_K"]
    assert (summary["max |ratio - (1/N + 1/D_K²)|"] < 1e-12).all()
    assert (summary["least reduction"] <= summary["whole body reduction"]).all()


def test_imagenet_check_without_imagenet_weights_says_so_and_runs_nothing(tmp_path):
    text = architecture_tables.imagenet_check(["mobilenet_v3_large"], {}, weights_dir=tmp_path)
    assert "NOT transfer learning" in text and "imagenet_class" not in text


def test_imagenet_class_name_of_index_285_is_the_egyptian_cat(offline_weights_dir):
    if not (offline_weights_dir / architecture_tables.CLASS_INDEX_FILE).exists():
        pytest.skip("needs the ImageNet class index beside the offline weights")
    assert architecture_tables.imagenet_class_name(285, offline_weights_dir) == "Egyptian_cat"
