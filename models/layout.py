"""Where a build puts what it makes: written once for the pipeline and for the tools that read it."""

from __future__ import annotations

from pathlib import Path

from service.artifact import MANIFEST


def work_folder(artifact: Path) -> Path:
    """The build's intermediate files beside the artifact: data/, checkpoint/ (the fine-tuned teacher),
    the teacher's ONNX files, teacher/, student-K/ and student-K-pruned/."""
    return artifact.with_name(artifact.name + ".work")


def packaged_teacher(work: Path) -> Path:
    """The teacher's own artifact, built when a student is distilled from it."""
    return work / "teacher"


def student_folder(work: Path, layers: int) -> Path:
    """A student's checkpoint/ and ONNX files."""
    return work / f"student-{layers}"


def pruned_folder(work: Path, layers: int) -> Path:
    """A K-layer student's pruned copy: its checkpoint/ and ONNX files."""
    return work / f"student-{layers}-pruned"


def candidate(folder: Path) -> Path:
    """The artifact a student (pruned or not) is packaged into, before the build picks what it serves."""
    return folder / "artifact"


def teacher_of(artifact: Path) -> Path:
    """The artifact of the teacher of the model in `artifact`: itself when no student was distilled."""
    teacher = packaged_teacher(work_folder(artifact))
    return teacher if (teacher / MANIFEST).is_file() else artifact
