"""Where each data set's files live at their owners, and where ``din fetch`` puts them.

One :class:`Source` per downloadable variant: the files' canonical URLs, what
is known to check them (published checksums, sizes), the owner's page, and the
folder under ``data/raw/<dataset>/`` that ``din prepare --source`` then reads.
Kept apart from the download code so the registry is easy to read and update
when an owner moves a file. Which function serves which dataset is the
``fetch:`` key of the dataset's feature spec (:mod:`din_model.registry.datasets`).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path

from din_model.errors import ConfigError
from din_model.registry import fetch_function

DEFAULT_DEST = Path("data/raw")

AMAZON_2014_BASE = "http://snap.stanford.edu/data/amazon/productGraph/categoryFiles"
AMAZON_2014_PAGE = "https://jmcauley.ucsd.edu/data/amazon/index_2014.html"
AMAZON_2018_BASE = "https://mcauleylab.ucsd.edu/public_datasets/data/amazon_v2"
AMAZON_2018_PAGE = "https://cseweb.ucsd.edu/~jmcauley/datasets/amazon_v2/"
MOVIELENS_BASE = "https://files.grouplens.org/datasets/movielens"
MOVIELENS_PAGE = "https://grouplens.org/datasets/movielens/"
TAOBAO_USER_BEHAVIOR_PAGE = "https://tianchi.aliyun.com/dataset/649"
TAOBAO_DISPLAY_AD_PAGE = "https://tianchi.aliyun.com/dataset/56"

# GroupLens publishes an MD5 next to each archive (<name>.zip.md5); sizes where known.
MOVIELENS_ARCHIVES: dict[str, tuple[str, int | None]] = {
    "ml-100k": ("0e33842e24a9c977be4e0107933c0723", 4_924_029),
    "ml-1m": ("c4d9eecfca2ab87c1945afe126590906", None),
    "ml-20m": ("cd245b17a1ae2cc31bb14903e1204af3", 198_702_078),
}


@dataclass(frozen=True)
class RemoteFile:
    """One file to download; checked by checksum where published, else by the server's size."""

    url: str
    name: str
    md5: str | None = None
    sha256: str | None = None
    size: int | None = None
    extract: bool = False  # a zip archive, extracted next to itself after the download


@dataclass(frozen=True)
class Source:
    """A downloadable variant of a data set and the folder it lands in.

    ``folder`` is relative to ``data/raw/<dataset>/``: the files go there, and
    ``prepare_dir`` (the same folder, or the archive's top folder once
    extracted) is what ``din prepare --source`` reads. ``login_required``
    sources cannot be downloaded by a script: ``manual`` says how to get them.
    """

    dataset: str
    variant: str
    page: str
    files: tuple[RemoteFile, ...]
    folder: str = ""
    prepare_subdir: str = ""
    login_required: bool = False
    manual: str = ""
    mirrors: tuple[str, ...] = field(default_factory=tuple)

    def target_dir(self, dest_root: str | Path = DEFAULT_DEST) -> Path:
        return Path(dest_root) / self.dataset / self.folder

    def prepare_dir(self, dest_root: str | Path = DEFAULT_DEST) -> Path:
        return self.target_dir(dest_root) / self.prepare_subdir


def amazon_source(category: str = "Electronics", edition: str = "2014") -> Source:
    """The McAuley lab's 5-core reviews plus metadata of one category.

    2014 is the edition of the DIN paper (``reviews_<Cat>_5.json.gz``, meta as
    Python literals); 2018 is the newer release (``<Cat>_5.json.gz``, meta as
    JSON lines). Neither publishes checksums, so the size the server announces
    is checked.
    """
    if not category or not category.replace("_", "").isalnum():
        raise ConfigError(
            f"--category must look like Electronics or Musical_Instruments, got {category!r}"
        )
    if edition == "2014":
        files = (
            RemoteFile(
                f"{AMAZON_2014_BASE}/reviews_{category}_5.json.gz", f"reviews_{category}_5.json.gz"
            ),
            RemoteFile(f"{AMAZON_2014_BASE}/meta_{category}.json.gz", f"meta_{category}.json.gz"),
        )
        mirrors = (f"{AMAZON_2018_PAGE} (the 2018 edition: din fetch amazon --edition 2018)",)
        page = AMAZON_2014_PAGE
    elif edition == "2018":
        files = (
            RemoteFile(
                f"{AMAZON_2018_BASE}/categoryFilesSmall/{category}_5.json.gz",
                f"{category}_5.json.gz",
            ),
            RemoteFile(
                f"{AMAZON_2018_BASE}/metaFiles2/meta_{category}.json.gz", f"meta_{category}.json.gz"
            ),
        )
        mirrors = ("https://jmcauley.ucsd.edu/data/amazon_v2/ (older address of the same files)",)
        page = AMAZON_2018_PAGE
    else:
        raise ConfigError(f"--edition must be 2014 or 2018, got {edition!r}")
    return Source(
        dataset="amazon",
        variant=f"{edition}-{category.lower()}",
        page=page,
        files=files,
        folder=f"{edition}-{category.lower()}",
        mirrors=mirrors,
    )


def movielens_source(version: str = "ml-1m") -> Source:
    """A GroupLens MovieLens archive, checked against its published MD5 and extracted."""
    if version not in MOVIELENS_ARCHIVES:
        raise ConfigError(
            f"--version must be one of {', '.join(MOVIELENS_ARCHIVES)}, got {version!r}"
        )
    md5, size = MOVIELENS_ARCHIVES[version]
    return Source(
        dataset="movielens",
        variant=version,
        page=MOVIELENS_PAGE,
        files=(
            RemoteFile(
                f"{MOVIELENS_BASE}/{version}.zip",
                f"{version}.zip",
                md5=md5,
                size=size,
                extract=True,
            ),
        ),
        prepare_subdir=version,
    )


def taobao_source(variant: str = "user-behavior") -> Source:
    """The Tianchi files: free, but behind a login, so they are placed by hand."""
    if variant == "user-behavior":
        names = ("UserBehavior.csv",)
        page = TAOBAO_USER_BEHAVIOR_PAGE
        how = "the archive UserBehavior.csv.zip (unzip it)"
    elif variant == "display-ad":
        names = ("raw_sample.csv", "ad_feature.csv", "user_profile.csv", "behavior_log.csv")
        page = TAOBAO_DISPLAY_AD_PAGE
        how = (
            "raw_sample.csv.tar.gz, ad_feature.csv.tar.gz, user_profile.csv.tar.gz and "
            "behavior_log.csv.tar.gz (unpack them)"
        )
    else:
        raise ConfigError(f"--variant must be user-behavior or display-ad, got {variant!r}")
    return Source(
        dataset="taobao",
        variant=variant,
        page=page,
        files=tuple(RemoteFile(url=page, name=name) for name in names),
        folder=variant,
        login_required=True,
        manual=(
            f"The Taobao files are published on Alibaba Tianchi ({page}), which needs a free "
            f"account and a login in a browser, so din fetch cannot download them. Log in, "
            f"download {how}"
        ),
    )


def get_source(dataset: str, **options: str | None) -> Source:
    """The source of ``dataset`` for the options a user gave (None means the default).

    The dataset's ``fetch`` function gets the options it has parameters for;
    ``din fetch`` offers every dataset's options, and the others are ignored.
    """
    function = fetch_function(dataset)
    accepted = inspect.signature(function).parameters
    given = {k: v for k, v in options.items() if v is not None and k in accepted}
    return function(**given)
