"""Unit test of the generated component `teacher_label`. Generated from the step declaration by `python -m pipeline generate`; do not edit."""

from unittest import mock

from pipeline.components.teacher_label import teacher_label


def test_component_runs_its_step_with_its_parameters_and_publishes_its_outputs(tmp_path):
    with mock.patch("relforge.steps.run_step_json", return_value='{"step": "teacher-label"}') as run, \
            mock.patch("relforge.steps.publish_outputs") as publish:
        result = teacher_label.python_func(run_uri="RUN", config_yaml="CFG", teacher="v-teacher")
    assert result == '{"step": "teacher-label"}'
    run.assert_called_once_with("teacher-label", "RUN", "CFG", teacher="v-teacher")
    publish.assert_called_once_with("teacher-label", "RUN", "CFG", {})
