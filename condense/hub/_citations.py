"""What the dataset card says about the source datasets and methods: Hub ids, licences, BibTeX.

Licences are the source dataset's, as its authors state them (``source`` says where); a distilled
set is derived from its source, so ``condense push`` uses that licence unless ``--license`` says
otherwise. Hub ids are the dataset repositories the field loads them from.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class SourceDataset:
    title: str
    hub_id: str | None
    #: a Hub licence identifier (https://huggingface.co/docs/hub/repositories-licenses)
    license: str
    license_name: str | None
    license_link: str | None
    #: where the licence is stated
    source: str
    bibtex: tuple[str, ...]


_IMAGENET = """@inproceedings{deng2009imagenet,
  title     = {ImageNet: A Large-Scale Hierarchical Image Database},
  author    = {Deng, Jia and Dong, Wei and Socher, Richard and Li, Li-Jia and Li, Kai and
               Fei-Fei, Li},
  booktitle = {IEEE Conference on Computer Vision and Pattern Recognition (CVPR)},
  year      = {2009}
}"""
_CIFAR = """@techreport{krizhevsky2009cifar,
  title       = {Learning Multiple Layers of Features from Tiny Images},
  author      = {Krizhevsky, Alex},
  institution = {University of Toronto},
  year        = {2009}
}"""
_IMAGENET_TERMS = ("ImageNet's terms of access (non-commercial research and educational use; "
                   "https://image-net.org/download.php): the images are ImageNet's")


def _imagenet_subset(title: str) -> SourceDataset:
    return SourceDataset(title, None, "other", "imagenet-terms",
                         "https://image-net.org/download.php", _IMAGENET_TERMS, (_IMAGENET,))


DATASETS: dict[str, SourceDataset] = {
    "mnist": SourceDataset(
        "MNIST", "ylecun/mnist", "cc-by-sa-3.0", None, None,
        "Yann LeCun and Corinna Cortes's copyright notice: MNIST (derived from NIST's databases) "
        "is available under CC BY-SA 3.0 (http://yann.lecun.com/exdb/mnist/); the Hub card "
        "ylecun/mnist says MIT",
        ("""@article{lecun1998mnist,
  title   = {Gradient-Based Learning Applied to Document Recognition},
  author  = {LeCun, Yann and Bottou, L{\\'e}on and Bengio, Yoshua and Haffner, Patrick},
  journal = {Proceedings of the IEEE},
  volume  = {86},
  number  = {11},
  pages   = {2278--2324},
  year    = {1998}
}""",)),
    "fashion-mnist": SourceDataset(
        "Fashion-MNIST", "zalando-datasets/fashion_mnist", "mit", None, None,
        "Zalando SE, MIT licence (https://github.com/zalandoresearch/fashion-mnist)",
        ("""@article{xiao2017fashionmnist,
  title   = {Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine Learning Algorithms},
  author  = {Xiao, Han and Rasul, Kashif and Vollgraf, Roland},
  journal = {arXiv preprint arXiv:1708.07747},
  year    = {2017}
}""",)),
    "cifar10": SourceDataset(
        "CIFAR-10", "uoft-cs/cifar10", "unknown", None, None,
        "no licence is stated by its authors (https://www.cs.toronto.edu/~kriz/cifar.html); "
        "the Hub card uoft-cs/cifar10 says unknown", (_CIFAR,)),
    "cifar100": SourceDataset(
        "CIFAR-100", "uoft-cs/cifar100", "unknown", None, None,
        "no licence is stated by its authors (https://www.cs.toronto.edu/~kriz/cifar.html); "
        "the Hub card uoft-cs/cifar100 says unknown", (_CIFAR,)),
    "svhn": SourceDataset(
        "SVHN", "ufldl-stanford/svhn", "other", "svhn-non-commercial",
        "http://ufldl.stanford.edu/housenumbers/",
        "for non-commercial use only (http://ufldl.stanford.edu/housenumbers/); the Hub card "
        "ufldl-stanford/svhn says other",
        ("""@inproceedings{netzer2011svhn,
  title     = {Reading Digits in Natural Images with Unsupervised Feature Learning},
  author    = {Netzer, Yuval and Wang, Tao and Coates, Adam and Bissacco, Alessandro and
               Wu, Bo and Ng, Andrew Y.},
  booktitle = {NIPS Workshop on Deep Learning and Unsupervised Feature Learning},
  year      = {2011}
}""",)),
    "tinyimagenet": SourceDataset(
        "Tiny ImageNet", "zh-plus/tiny-imagenet", "other", "imagenet-terms",
        "https://image-net.org/download.php", _IMAGENET_TERMS,
        ("""@article{le2015tinyimagenet,
  title   = {Tiny ImageNet Visual Recognition Challenge},
  author  = {Le, Ya and Yang, Xuan},
  journal = {CS 231N, Stanford University},
  year    = {2015}
}""", _IMAGENET)),
    **{name: _imagenet_subset(title) for name, title in (
        ("imagenette", "ImageNette"), ("imagewoof", "ImageWoof"), ("imagemeow", "ImageMeow"),
        ("imagesquawk", "ImageSquawk"), ("imagefruit", "ImageFruit"),
        ("imageyellow", "ImageYellow"))},
}

#: papers of the methods the field publishes; a method class may carry ``paper = (title, url)``
#: and ``citation`` (a BibTeX entry) instead
PAPERS: dict[str, tuple[str, str]] = {
    "dc": ("Dataset Condensation with Gradient Matching (ICLR 2021)",
           "https://arxiv.org/abs/2006.05929"),
    "dsa": ("Dataset Condensation with Differentiable Siamese Augmentation (ICML 2021)",
            "https://arxiv.org/abs/2102.08259"),
    "dm": ("Dataset Condensation with Distribution Matching (WACV 2023)",
           "https://arxiv.org/abs/2110.04181"),
    "mtt": ("Dataset Distillation by Matching Training Trajectories (CVPR 2022)",
            "https://arxiv.org/abs/2203.11932"),
    "idc": ("Dataset Condensation via Efficient Synthetic-Data Parameterization (ICML 2022)",
            "https://arxiv.org/abs/2205.14959"),
    "datadam": ("DataDAM: Efficient Dataset Distillation with Attention Matching (ICCV 2023)",
                "https://arxiv.org/abs/2310.00093"),
    "datm": (("Towards Lossless Dataset Distillation via Difficulty-Aligned Trajectory Matching "
              "(ICLR 2024)"), "https://arxiv.org/abs/2310.05773"),
    "ftd": ("Minimizing the Accumulated Trajectory Error to Improve Dataset Distillation "
            "(CVPR 2023)", "https://arxiv.org/abs/2211.11004"),
}

METHOD_BIBTEX: dict[str, str] = {
    "dc": """@inproceedings{zhao2021dc,
  title     = {Dataset Condensation with Gradient Matching},
  author    = {Zhao, Bo and Mopuri, Konda Reddy and Bilen, Hakan},
  booktitle = {International Conference on Learning Representations (ICLR)},
  year      = {2021}
}""",
    "dsa": """@inproceedings{zhao2021dsa,
  title     = {Dataset Condensation with Differentiable Siamese Augmentation},
  author    = {Zhao, Bo and Bilen, Hakan},
  booktitle = {International Conference on Machine Learning (ICML)},
  year      = {2021}
}""",
    "dm": """@inproceedings{zhao2023dm,
  title     = {Dataset Condensation with Distribution Matching},
  author    = {Zhao, Bo and Bilen, Hakan},
  booktitle = {IEEE/CVF Winter Conference on Applications of Computer Vision (WACV)},
  year      = {2023}
}""",
    "mtt": """@inproceedings{cazenavette2022mtt,
  title     = {Dataset Distillation by Matching Training Trajectories},
  author    = {Cazenavette, George and Wang, Tongzhou and Torralba, Antonio and
               Efros, Alexei A. and Zhu, Jun-Yan},
  booktitle = {IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)},
  year      = {2022}
}""",
    "idc": """@inproceedings{kim2022idc,
  title     = {Dataset Condensation via Efficient Synthetic-Data Parameterization},
  author    = {Kim, Jang-Hyun and Kim, Jinuk and Oh, Seong Joon and Yun, Sangdoo and
               Song, Hwanjun and Jeong, Joonhyun and Ha, Jung-Woo and Song, Hyun Oh},
  booktitle = {International Conference on Machine Learning (ICML)},
  year      = {2022}
}""",
    "datadam": """@inproceedings{sajedi2023datadam,
  title     = {DataDAM: Efficient Dataset Distillation with Attention Matching},
  author    = {Sajedi, Ahmad and Khaki, Samir and Amjadian, Ehsan and Liu, Lucy Z. and
               Lawryshyn, Yuri A. and Plataniotis, Konstantinos N.},
  booktitle = {IEEE/CVF International Conference on Computer Vision (ICCV)},
  year      = {2023}
}""",
    "datm": """@inproceedings{guo2024datm,
  title     = {Towards Lossless Dataset Distillation via Difficulty-Aligned Trajectory Matching},
  author    = {Guo, Ziyao and Wang, Kai and Cazenavette, George and Li, Hui and Zhang, Kaipeng
               and You, Yang},
  booktitle = {International Conference on Learning Representations (ICLR)},
  year      = {2024}
}""",
    "ftd": """@inproceedings{du2023ftd,
  title     = {Minimizing the Accumulated Trajectory Error to Improve Dataset Distillation},
  author    = {Du, Jiawei and Jiang, Yidi and Tan, Vincent Y. F. and Zhou, Joey Tianyi and
               Li, Haizhou},
  booktitle = {IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)},
  year      = {2023}
}""",
    "herding": """@inproceedings{welling2009herding,
  title     = {Herding Dynamical Weights to Learn},
  author    = {Welling, Max},
  booktitle = {International Conference on Machine Learning (ICML)},
  year      = {2009}
}""",
}
