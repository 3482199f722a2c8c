import numpy as np
import pytest

from nnactive_dataset_atlas.labels import (
    LABEL_SETS,
    class_of_volume,
    label_values,
    maximum_probability_labels,
    read_atlas_names,
    structure,
)


def test_hemisphere_prefix_and_the_ventricle_spelling_are_normalised():
    assert structure("Left_Thalamus") == structure("Right_Thalamus") == "Thalamus"
    assert structure("Left_Lateral_Ventrical") == structure("Right_Lateral_Ventricle") == "Lateral_Ventricle"
    assert structure("Brain-Stem") == "Brain-Stem"


def test_tissue_classes_group_cortex_and_nuclei(atlas_names):
    classes = dict(zip(atlas_names, class_of_volume(atlas_names, "tissue"), strict=True))
    values = label_values("tissue")
    assert classes["Left_Frontal_Pole"] == classes["Right_Frontal_Pole"] == values["cortex"]
    assert classes["Left_Thalamus"] == classes["Right_Accumbens"] == values["deep_grey"]
    assert classes["Left_Lateral_Ventrical"] == classes["Right_Lateral_Ventricle"] == values["ventricle"]
    assert classes["Brain-Stem"] == values["brainstem"]


def test_subcortical_classes_leave_cortex_ventricles_and_brainstem_as_background(atlas_names):
    classes = dict(zip(atlas_names, class_of_volume(atlas_names, "subcortical"), strict=True))
    assert classes["Left_Frontal_Pole"] == classes["Brain-Stem"] == classes["Left_Lateral_Ventrical"] == 0
    assert len(set(classes.values()) - {0}) == len(LABEL_SETS["subcortical"]) == 7
    assert classes["Left_Putamen"] == classes["Right_Putamen"] == label_values("subcortical")["putamen"]


def test_an_atlas_without_a_structure_of_the_set_is_refused(atlas_names):
    with pytest.raises(ValueError, match="no volume for Accumbens"):
        class_of_volume([n for n in atlas_names if "Accumbens" not in n], "subcortical")


def test_maximum_probability_with_threshold_and_ties():
    probabilities = np.array([[[[30, 24, 10, 0]]], [[[30, 10, 26, 0]]]], dtype=np.uint8)
    labels = maximum_probability_labels(probabilities, np.array([1, 2], np.uint8), threshold=25)
    # tie -> the lower volume; below the threshold -> background; nothing -> background
    assert labels.tolist() == [[[1, 0, 2, 0]]]


def test_the_name_table_must_be_complete_and_in_order(tmp_path):
    table = tmp_path / "names.csv"
    table.write_text("index,name\n0,a\n2,b\n")
    with pytest.raises(ValueError, match="names.csv: indices must run"):
        read_atlas_names(table)
    table.write_text("id,label\n0,a\n")
    with pytest.raises(ValueError, match="names.csv: not an index,name table"):
        read_atlas_names(table)
