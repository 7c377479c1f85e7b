// The libraries report.html and the live view draw with, bundled by ./build into vendor.js (one
// IIFE that sets window.SweepVendor) and vendor.css. Only the parts the views use are imported,
// to keep the pages small.
import * as echarts from "echarts/core";
import { ParallelChart } from "echarts/charts";
import { ParallelComponent, VisualMapComponent } from "echarts/components";
import { CanvasRenderer } from "echarts/renderers";
import {
  Tabulator, SortModule, FilterModule, FormatModule, PageModule, AjaxModule,
  ResizeColumnsModule, InteractionModule,
} from "tabulator-tables";

echarts.use([ParallelChart, ParallelComponent, VisualMapComponent, CanvasRenderer]);
Tabulator.registerModule([
  SortModule, FilterModule, FormatModule, PageModule, AjaxModule, ResizeColumnsModule,
  InteractionModule,
]);

window.SweepVendor = { echarts, Tabulator };
