"""Intake's HTTP routes, one module per part of the work: cases (网格上报, 吹哨), casework
(随手做, 返工, 评价, 合并), jurisdiction (辖区), photos, Open311 GeoReport v2."""
