"""Target sizes of the shrunk configurations and the config attribute names each size applies to."""

from __future__ import annotations

# Target sizes of the shrunk configurations.
HIDDEN = 64
HEADS = 4
HEAD_DIM = HIDDEN // HEADS
INTERMEDIATE = 128
LAYERS = 2
VOCAB = 512
IMAGE = 32
PATCH = 8
EXPERTS = 4
EXPERTS_PER_TOKEN = 2
MAX_POSITIONS = 512

WIDTH_KEYS = {
    "hidden_size", "d_model", "n_embd", "n_embed", "embed_dim", "model_dim", "emb_dim", "d_embed",
    "hidden_dim", "encoder_hidden_size", "decoder_hidden_size", "text_hidden_size", "projection_dim",
    "out_hidden_size", "output_hidden_size", "projector_hidden_size", "embedding_size", "embedding_dim",
    "vision_hidden_size", "audio_hidden_size", "pooler_hidden_size", "pooler_output_size", "fusion_hidden_size",
    "image_text_hidden_size", "encoder_hidden_dim", "classifier_proj_size",
    "memory_attention_hidden_size", "memory_encoder_hidden_size", "memory_encoder_output_channels",
    "mask_downsampler_embed_dim", "memory_fuser_embed_dim", "fpn_hidden_size", "hidden_size_per_layer_input",
    "latent_dim", "codebook_dim", "codevector_dim", "proj_codevector_dim", "xvector_output_dim",
    "mask_feature_size", "num_filters", "d_latent", "word_embed_proj_dim", "unit_embed_dim",
    "text_embed_dim", "vision_embed_dim", "query_hidden_size", "decoder_embed_dim", "quantization_dim",
    "vector_quantization_hidden_dimension", "upsample_initial_channel", "output_channels", "feature_size",
    "speech_decoder_postnet_units", "lang_embed_dim", "spkr_embed_dim", "neck_out_channels",
    "kv_channels", "lqe_hidden_dim", "audio_embed_dim", "image_embed_dim", "mamba_expand_dim", "condition_dim",
}
FFN_KEYS = {
    "intermediate_size", "ffn_dim", "encoder_ffn_dim", "decoder_ffn_dim", "n_inner", "d_ff", "mlp_dim",
    "moe_intermediate_size", "shared_expert_intermediate_size", "decoder_intermediate_size", "dim_feedforward",
    "encoder_feedforward_dim", "ffn_hidden_size", "d_inner", "shared_intermediate_size", "memory_fuser_intermediate_dim",
    "memory_attention_feed_forward_hidden_size", "speech_encoder_intermediate_size", "t2u_encoder_ffn_dim",
    "t2u_decoder_ffn_dim", "encoder_intermediate_size", "vision_intermediate_size", "text_intermediate_size",
}
LAYER_KEYS = {
    "num_hidden_layers", "n_layer", "n_layers", "num_layers", "encoder_layers", "decoder_layers",
    "num_encoder_layers", "num_decoder_layers", "depth", "speech_encoder_layers", "t2u_encoder_layers",
    "t2u_decoder_layers", "num_text_layers", "num_vision_layers", "decoder_num_hidden_layers",
    "encoder_num_hidden_layers", "text_encoder_layers", "num_single_layers", "num_global_layers",
}
HEAD_KEYS = {
    "num_attention_heads", "n_head", "num_heads", "encoder_attention_heads", "decoder_attention_heads",
    "n_heads", "num_attention_heads_decoder", "decoder_num_attention_heads", "t2u_encoder_attention_heads",
    "t2u_decoder_attention_heads", "index_n_heads", "swa_num_attention_heads", "mamba_n_heads",
    "linear_num_value_heads", "linear_num_key_heads", "linear_num_heads", "encoder_num_attention_heads",
}
KV_HEAD_KEYS = {"num_key_value_heads", "n_head_kv", "num_kv_heads", "decoder_num_key_value_heads"}
HEAD_DIM_KEYS = {
    "head_dim", "d_kv", "d_head", "attention_head_dim", "linear_key_head_dim", "linear_value_head_dim",
    "linear_head_dim", "swa_head_dim", "mamba_d_head", "index_head_dim", "attention_head_size", "qk_head_dim",
}
VOCAB_KEYS = {"vocab_size", "t2u_vocab_size", "unit_hifi_gan_vocab_size", "vocab_size_per_layer_input"}
EXPERT_KEYS = {"num_experts", "num_local_experts", "n_routed_experts", "moe_num_experts", "num_routed_experts"}
TOPK_KEYS = {"num_experts_per_tok", "moe_topk", "top_k", "moe_k", "num_selected_experts", "top_k_experts"}
POSITION_KEYS = {
    "max_position_embeddings", "n_positions", "max_source_positions", "max_target_positions",
    "t2u_max_position_embeddings", "max_seq_len", "max_sequence_length", "n_ctx",
}
IMAGE_KEYS = {"image_size", "img_size", "pretrain_image_size", "max_img_size"}
PATCH_KEYS = {"patch_size"}
# Exact replacements independent of the default value (only applied when the key exists).
FIXED = {
    "kv_lora_rank": 16,
    "q_lora_rank": 32,
    "qk_rope_head_dim": 8,
    "qk_nope_head_dim": 8,
    "v_head_dim": 16,
    "n_group": 1,
    "n_groups": 1,
    "topk_group": 1,
    "first_k_dense_replace": 1,
    "num_nextn_predict_layers": 0,
    "index_topk": 16,
    "n_shared_experts": 1,
    "num_shared_experts": 1,
    "mamba_d_state": 16,
    "ssm_state_size": 16,
    "state_size": 16,
    "mamba_chunk_size": 16,
    "chunk_size": 16,
    "time_step_rank": 8,
    "mamba_dt_rank": 8,
    "num_queries": 16,
    "num_query_tokens": 8,
    "num_denoising": 4,
    "codebook_size": 64,
    "num_codevectors_per_group": 16,
    "num_mel_bins": 16,
    "max_source_positions": 32,
    "rotary_dim": 8,
    "num_frames": 4,
    "mm_tokens_per_image": 4,
}
# Flags that would need optional packages or downloads, and their safe values.
FLAGS = {"use_timm_backbone": False, "use_pretrained_backbone": False}
LIST_WIDTH_KEYS = {"hidden_sizes", "embed_dims", "dims", "channels", "neck_hidden_sizes", "embedding_dimension"}
LIST_DEPTH_KEYS = {"depths", "num_layers_per_stage", "stage_num_blocks", "block_depths"}
LIST_HEAD_KEYS = {"num_heads", "num_attention_heads", "heads"}
TOKEN_SUFFIXES = ("_token_id", "_token_index", "_token_ids")
PLACEHOLDER_KEYS = {"image_token_id", "image_token_index", "audio_token_id", "audio_token_index"}
SKIP_KEYS = {"id2label", "label2id", "_name_or_path", "architectures", "transformers_version", "dtype"}
